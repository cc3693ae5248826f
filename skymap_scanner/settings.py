"""Settings of the scanner server and worker, from `SKYSCAN_*` environment variables (one typed object each)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
        60.0, gt=0, description="min seconds between progress reports"
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
    log: str = Field("INFO", description="log level of the scanner")
    log_third_party: str = Field("WARNING", description="log level of libraries")


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
    log: str = Field("INFO", description="log level of the worker")
    log_third_party: str = Field("WARNING", description="log level of libraries")


class DummySettings(BaseSettings):
    """The `dummy` and `crash_dummy` reconstructions."""

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
