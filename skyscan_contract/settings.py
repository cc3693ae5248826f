"""The settings every process of a scan instance reads from its environment: the scanner server, the worker,
the dummy reconstructions, the client manager and its worker backends.

Their field names ARE the instance's environment interface: `env_name(ServerSettings, "skydriver_address")` is
`SKYSCAN_SKYDRIVER_ADDRESS`. Whoever starts an instance (`instance.build_instance`, the worker backends) takes
the names from here and checks each value with the field's own type (`check_value`), so a renamed setting
breaks mypy and the tests, not a scan. Units are in the names where the original's variable names allow
(`SKYSCAN_PROGRESS_INTERVAL_SEC`, `SKYSCAN_KILL_SWITCH_CHECK_INTERVAL` and `SKYSCAN_LOG` are the original's
names, kept for compatibility)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

#: python inside the client image (Dockerfile.client's venv): what remote workers run
IMAGE_PYTHON = "/opt/venv/bin/python"


def env_name(settings_cls: type[BaseSettings], field: str) -> str:
    """The environment variable a settings field is read from (its first alias, else prefix + NAME)."""
    info = settings_cls.model_fields[field]  # KeyError for a field that does not exist
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        if isinstance(first, str):
            return first
    elif isinstance(alias, str):
        return alias
    prefix = settings_cls.model_config.get("env_prefix", "")
    return f"{prefix}{field}".upper()


class InvalidSettings(ValueError):
    """Settings that could not be read from the environment; the message names each variable."""


_SECRET_WORDS = re.compile(r"password|secret|token|key", re.IGNORECASE)


def read_settings(settings_cls: type[SettingsT], **values: Any) -> SettingsT:
    """`settings_cls(**values)`, whose errors name the environment variables to fix, not the fields
    (`SKYDRIVER_PORT='abc': Input should be a valid integer`); values of secret-like variables are not shown.

    Raises:
        InvalidSettings: one or more variables have bad values.
    """
    try:
        return settings_cls(**values)
    except ValidationError as e:
        problems = []
        for error in e.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            name = env_name(settings_cls, field) if field in settings_cls.model_fields else field
            shown = "" if _SECRET_WORDS.search(name) else f"={error.get('input')!r}"
            problems.append(f"{name}{shown}: {error['msg']}")
        raise InvalidSettings("; ".join(problems)) from None
    except SettingsError as e:  # a complex value (list, dict) that is not JSON
        match = re.search(r'field "(\w+)"', str(e))
        field = match.group(1) if match else ""
        if field not in settings_cls.model_fields:
            raise InvalidSettings(str(e)) from None
        raise InvalidSettings(
            f"{env_name(settings_cls, field)}: not valid JSON (lists and objects are written as JSON, "
            "e.g. '[\"local\"]')"
        ) from None


def env_fields(settings_cls: type[BaseSettings]) -> dict[str, str]:
    """{environment variable: field name} of every field of a settings class."""
    return {env_name(settings_cls, name): name for name in settings_cls.model_fields}


@functools.cache
def _adapter(settings_cls: type[BaseSettings], field: str) -> TypeAdapter[Any]:
    info = settings_cls.model_fields[field]
    annotated: Any = (
        Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
    )
    return TypeAdapter(annotated)


def check_value(settings_cls: type[BaseSettings], field: str, value: object) -> object:
    """`value` validated by the field's own type and bounds (pydantic's ValidationError if it fails)."""
    return _adapter(settings_cls, field).validate_python(value)


def env_text(value: object) -> str:
    """A value as an environment string, the one way every launcher writes it (floats keep full
    precision; booleans as pydantic reads them)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))  # 15.0 -> "15", as people write it
    return str(value)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(value: str) -> str:
    if value not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return value


#: a `logging` level name (any case)
LogLevel = Annotated[
    str,
    BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
    AfterValidator(_log_level),
]


# -- the scanner ------------------------------------------------------------------------------------
class BrokerSettings(BaseSettings):
    """Where the message broker is (shared by server and worker)."""

    model_config = SettingsConfigDict(env_prefix="SKYSCAN_", extra="ignore")

    broker_type: str = Field(
        "rabbitmq", description="oms-mqclient broker: rabbitmq, nats or pulsar"
    )
    broker_address: str = Field(
        "localhost", description="broker address, [user[:pass]@]host[:port][/vhost]"
    )
    broker_auth: SecretStr = Field(SecretStr(""), description="broker auth token (password)")
    broker_heartbeat_s: int = Field(
        60,
        ge=0,
        description="AMQP heartbeat; the event loop answers it even during long reconstructions",
    )
    broker_outage_timeout_s: float = Field(
        300,
        gt=0,
        description="how long the server and workers wait for a broker that went away (RabbitMQ: they "
        "reconnect and carry on, nothing lost) before giving up",
    )
    broker_max_message_bytes: int = Field(
        4_194_304,
        ge=65_536,
        description="largest decompressed message accepted from the scan's queues; a larger one (a "
        "zstd bomb, a stray upload) is dead-lettered, not decompressed further (a real pixel task or "
        "result is under 2 KB)",
    )


class ServerSettings(BrokerSettings):
    """The scanner server (`skymap-scanner server`)."""

    skydriver_address: str = Field(
        "", description="SkyDriver base URL; empty = run without SkyDriver"
    )
    skydriver_auth: SecretStr = Field(
        SecretStr(""), description="bearer token for SkyDriver (system role)"
    )
    skydriver_scan_id: str = Field("", description="the scan id (queue names and SkyDriver paths)")
    progress_interval_sec: float = Field(
        10.0,
        gt=0,
        description="seconds between progress reports (one is also sent at each new nside and at the end)",
    )
    result_interval_sec: float = Field(
        120.0, gt=0, description="min seconds between partial results"
    )
    kill_switch_check_interval: float = Field(
        300.0, gt=0, description="seconds between checks of /status for a deleted scan"
    )
    mq_timeout_from_clients: float = Field(
        7200.0, gt=0, description="seconds without any result before the scan fails"
    )
    mq_prefetch_from_clients: int = Field(300, ge=1, description="server consumer prefetch")
    log: LogLevel = Field("INFO", description="log level of the scanner")
    log_third_party: LogLevel = Field("WARNING", description="log level of libraries")


class WorkerSettings(BrokerSettings):
    """A worker (`skymap-scanner worker`)."""

    pixel_timeout_s: float = Field(
        1800.0, gt=0, description="a reconstruction running longer is killed and the pixel retried"
    )
    max_pixel_attempts: int = Field(
        3, ge=1, description="attempts per pixel before it is reported as failed"
    )
    worker_idle_timeout_s: float = Field(
        3600.0, gt=0, description="a worker with no pixel for this long exits (0 exit code)"
    )
    worker_prefetch: int = Field(
        2,
        ge=1,
        description="pixels a worker holds at once: 2 hides the broker round trip between pixels; "
        "unacknowledged ones return to the queue if the worker dies",
    )
    heartbeat_interval_s: float = Field(
        1.0, gt=0, description="how often the worker wakes during a reconstruction (timeout check)"
    )
    log: LogLevel = Field("INFO", description="log level of the worker")
    log_third_party: LogLevel = Field("WARNING", description="log level of libraries")


class DummySettings(BaseSettings):
    """The `dummy` and `crash_dummy` reconstructions (read on the server, handed to workers)."""

    model_config = SettingsConfigDict(env_prefix="SKYSCAN_", extra="ignore")

    dummy_sleep_s: float = Field(
        2.0,
        ge=0,
        description="mean sleep of dummy per pixel; drawn from U(s/2, 3s/2) (original: U(1,3))",
    )
    dummy_seed: int | None = Field(
        None,
        description="seed: the same pixel-variation always gives the same numbers; unset = random",
    )
    crash_dummy_probability: float = Field(
        0.5,
        ge=0,
        le=1,
        description="probability that crash_dummy crashes (raise or hang) on a pixel",
    )


def _worker_alias(field: str) -> AliasChoices:
    """A client-manager field read from the worker's own variable (it hands the value on to workers)."""
    return AliasChoices(env_name(WorkerSettings, field), field)


def _server_alias(field: str, own: str) -> AliasChoices:
    """A client-manager field read from the server's variable (the two run side by side) or its own."""
    return AliasChoices(env_name(ServerSettings, field), own)


# -- the client manager -----------------------------------------------------------------------------
class ManagerSettings(BaseSettings):
    """The client manager (`client-manager`). SkyDriver's address and token are the server's
    `SKYSCAN_SKYDRIVER_*`: the two run side by side with one environment."""

    model_config = SettingsConfigDict(env_prefix="CLIENT_MANAGER_", extra="ignore")

    skydriver_address: str = Field(
        "",
        validation_alias=_server_alias("skydriver_address", "CLIENT_MANAGER_SKYDRIVER_ADDRESS"),
        description="SkyDriver base URL (reports and stop signals); empty = stand-alone",
    )
    skydriver_auth: SecretStr = Field(
        SecretStr(""),
        validation_alias=_server_alias("skydriver_auth", "CLIENT_MANAGER_SKYDRIVER_AUTH"),
        description="bearer token for SkyDriver",
    )
    startup_timeout_s: float = Field(
        600.0, gt=0, description="how long to wait for the server's startup file"
    )
    max_replacements_per_worker: int = Field(
        3,
        ge=0,
        description="a dead worker is replaced at most this many times per requested worker",
    )
    stop_timeout_s: float = Field(15.0, gt=0, description="graceful stop time before SIGKILL")
    skydriver_unreachable_timeout_s: float = Field(
        600.0, gt=0, description="SkyDriver unreachable this long: stop the workers and exit"
    )
    log: LogLevel = Field("INFO", description="log level")


class RemoteWorkerSettings(BaseSettings):
    """What every remote worker backend (k8s, condor) needs to know about its workers; SkyDriver's k8s
    launcher sets these in the scan Job. The broker and the pixel timeout are the worker's own
    `SKYSCAN_*` variables, handed on to every worker."""

    model_config = SettingsConfigDict(
        env_prefix="CLIENT_MANAGER_", extra="ignore", populate_by_name=True
    )

    worker_image: str = Field(min_length=1, description="image of the workers (client image)")
    worker_memory_bytes: int = Field(8_000_000_000, gt=0, description="memory per worker")
    worker_disk_bytes: int = Field(1_000_000_000, gt=0, description="disk per worker (bytes)")
    worker_priority: int = Field(0, description="the scan's priority (HTCondor job priority)")
    worker_max_runtime_s: int = Field(
        86400, gt=0, description="a worker running longer is stopped (or held, on HTCondor)"
    )
    pixel_timeout_s: float = Field(
        1800.0,
        gt=0,
        validation_alias=_worker_alias("pixel_timeout_s"),
        description="the workers' pixel timeout (handed on to them)",
    )
    broker_type: str = Field(
        "rabbitmq",
        validation_alias=_worker_alias("broker_type"),
        description="the workers' broker type (handed on)",
    )
    broker_address: str = Field(
        "localhost",
        validation_alias=_worker_alias("broker_address"),
        description="the workers' broker address (handed on)",
    )


class K8sWorkerSettings(RemoteWorkerSettings):
    """The `k8s` worker backend (`CLIENT_MANAGER_*`); the k8s launcher sets them in the scan Job."""

    worker_cpu: float = Field(1.0, gt=0, description="CPU cores per worker (request = limit)")
    k8s_namespace: str = Field("skydriver", description="namespace of the worker Job")
    k8s_secret_name: str = Field(
        "skydriver-secrets", description="Secret with the broker token (by reference)"
    )
    k8s_broker_auth_secret_key: str = Field("broker-auth", description="its key")
    k8s_image_pull_policy: str = Field("IfNotPresent", description="pull policy of workers")
    k8s_owner_job_name: str = Field("", description="scan Job owning the worker objects")
    k8s_owner_job_uid: str = Field("", description="its uid (both or neither)")
    k8s_ttl_seconds_after_finished: int = Field(600, ge=0, description="GC of a finished Job")
    k8s_api_timeout_s: float = Field(30.0, gt=0, description="timeout of one API call")
    k8s_api_retries: int = Field(3, ge=0, description="retries of a transient API failure")
    k8s_api_backoff_s: float = Field(1.0, ge=0, description="first retry delay")
    k8s_api_backoff_max_s: float = Field(30.0, ge=0, description="cap of one retry delay")
    k8s_quota_wait_s: float = Field(
        900.0, ge=0, description="how long start() waits for a Job-quota slot before failing"
    )
    k8s_quota_retry_delay_s: float = Field(
        30.0, gt=0, description="time between create attempts while the quota is used up"
    )


class CondorWorkerSettings(RemoteWorkerSettings):
    """The `condor` worker backend (`CLIENT_MANAGER_*`; worker sizes are set by the launcher). The schedd
    itself is found through the usual HTCondor configuration (CONDOR_CONFIG)."""

    broker_auth: SecretStr = Field(
        SecretStr(""),
        validation_alias=_worker_alias("broker_auth"),
        description="broker token: written to a 0600 file transferred with the job",
    )
    condor_requirements: str = Field("", description="extra requirements expression of workers")
    condor_spool: bool = Field(
        False, description="spool input files to the schedd (a schedd on another machine)"
    )
    condor_schedd_timeout_s: float = Field(60.0, gt=0, description="timeout of one schedd call")
    condor_worker_python: str = Field(IMAGE_PYTHON, description="python inside the image")


# -- what a scan request may set ----------------------------------------------------------------------
#: the scanner settings a scan request may set through `scanner_server_env`: the dummies, report
#: intervals and log levels — never where the instance connects, as whom, or with which credentials.
#: Each value is checked by the setting's own type when the scan is submitted.
USER_SETTINGS: dict[str, tuple[type[BaseSettings], str]] = {
    env_name(cls, name): (cls, name)
    for cls, name in (
        (DummySettings, "dummy_sleep_s"),
        (DummySettings, "dummy_seed"),
        (DummySettings, "crash_dummy_probability"),
        (ServerSettings, "progress_interval_sec"),
        (ServerSettings, "result_interval_sec"),
        (ServerSettings, "log"),
        (ServerSettings, "log_third_party"),
    )
}
#: names of the original scanner that its own clients still send; accepted (booleans) and ignored here
#: (they shrink the original's millipede reconstruction, which this scanner does not have)
IGNORED_ORIGINAL_SETTINGS = ("SKYSCAN_MINI_TEST", "_SKYSCAN_CI_MINI_TEST")
#: the longest value of one such setting
MAX_USER_SETTING_CHARS = 4096


def check_user_settings(env: Mapping[str, object]) -> dict[str, str]:
    """A scan's `scanner_server_env` as environment strings; ValueError naming the first variable that a
    scan may not set, or whose value its setting's type refuses."""
    out: dict[str, str] = {}
    for name, value in env.items():
        if name not in USER_SETTINGS and name not in IGNORED_ORIGINAL_SETTINGS:
            allowed = ", ".join([*USER_SETTINGS, *IGNORED_ORIGINAL_SETTINGS])
            raise ValueError(f"{name} cannot be set by a scan (allowed: {allowed})")
        if value is None:
            raise ValueError(f"{name}: a value is needed, not null")
        text = env_text(value)
        if len(text) > MAX_USER_SETTING_CHARS:
            raise ValueError(f"{name}: longer than {MAX_USER_SETTING_CHARS} characters")
        try:
            if name in USER_SETTINGS:
                check_value(*USER_SETTINGS[name], text)
            else:
                TypeAdapter(bool).validate_python(text)
        except ValueError as e:  # pydantic's ValidationError: keep its first message only
            reason = e.errors()[0]["msg"] if hasattr(e, "errors") else str(e)
            raise ValueError(f"{name}={text!r}: {reason}") from None
        out[name] = text
    return out


#: every settings class of a scan instance's processes (what an operator may set for all instances)
INSTANCE_SETTINGS: tuple[type[BaseSettings], ...] = (
    ServerSettings,
    WorkerSettings,
    DummySettings,
    ManagerSettings,
    K8sWorkerSettings,
    CondorWorkerSettings,
)


def check_instance_env(env: dict[str, str]) -> None:
    """ValueError naming the first variable that no instance setting reads, or whose value is wrong."""
    for name, value in env.items():
        owners = [
            (cls, fields[name]) for cls in INSTANCE_SETTINGS if name in (fields := env_fields(cls))
        ]
        if not owners:
            raise ValueError(f"{name} is not a setting of a scan instance")
        for cls, field in owners:
            try:
                check_value(cls, field, value)
            except ValueError as e:
                reason = e.errors()[0]["msg"] if hasattr(e, "errors") else str(e)
                raise ValueError(f"{name}={value!r}: {reason}") from None
