"""SkyDriver's settings: one typed object, read once from the environment in `main()` and passed down."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from skyscan_contract.settings import ServerSettings, check_instance_env, env_name


def default_state_dir() -> Path:
    """`$XDG_STATE_HOME/skydriver` (`~/.local/state/skydriver`): the same directory whatever the
    current directory, so that `skydriver serve` and `skydriver token issue` always share the key."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "skydriver"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SKYDRIVER_", extra="ignore", populate_by_name=True
    )

    host: str = Field("127.0.0.1", description="address the REST server listens on")
    port: int = Field(
        8080, ge=0, le=65535, description="port of the REST server (0 = any free port)"
    )
    public_url: str = Field(
        "", description="URL scan instances use to reach SkyDriver; default http://<host>:<port>"
    )
    mongodb_uri: str = Field(
        "mongodb://127.0.0.1:27017",
        validation_alias=AliasChoices("MONGODB_URI", "SKYDRIVER_MONGODB_URI"),
        description="MongoDB (or FerretDB) connection URI (env MONGODB_URI)",
    )
    mongodb_database: str = Field("SkyDriver_DB", description="database name")
    state_dir: Path = Field(
        default_factory=lambda: default_state_dir(),
        description="SkyDriver's own files, wherever it is started from: the local signing key "
        "(auth/), local scan instances' logs and files (scans/); default $XDG_STATE_HOME/skydriver",
    )
    launcher: str = Field("local", description="how scan instances start: local")
    clusters: list[str] = Field(
        default_factory=lambda: ["local"], description="cluster names scans may request (JSON list)"
    )
    scanner_versions: list[str] = Field(
        default_factory=lambda: ["4.2.1", "4.1.0", "4.0.0"],
        description="scanner versions (image tags) this deployment can run (JSON list)",
    )
    min_scanner_version: str = Field("4.0.0", description="oldest scanner version accepted")
    max_workers_debug_mode: dict[str, int] = Field(
        default_factory=lambda: {"local": 5},
        description="worker cap per cluster when debug_mode includes client-logs (JSON object)",
    )
    max_request_body_bytes: int = Field(
        50_000_000, ge=1024, description="largest accepted request body (413 above)"
    )
    request_body_timeout_s: float = Field(
        120.0, gt=0, description="a request body must arrive within this (slow uploads are cut)"
    )
    idle_connection_timeout_s: float = Field(
        300.0, gt=0, description="an idle keep-alive connection is closed after this"
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="web origins (e.g. an external dashboard's https://host) allowed to call the API "
        "from a browser (JSON list)",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses of reverse proxies whose X-Real-Ip / X-Forwarded-For are believed "
        "(JSON list; others' are ignored)",
    )
    max_workers_per_scan: int = Field(
        1000, ge=1, description="workers one scan may ask for in all (on submit and add-workers)"
    )
    max_workers_per_cluster: dict[str, int] = Field(
        default_factory=lambda: {"local": 32},
        description="workers one scan may ask for on a cluster (JSON object; others: the per-scan cap)",
    )
    max_scanner_server_memory_bytes: int = Field(
        64_000_000_000, ge=1, description="largest scanner_server_memory a scan may ask for"
    )
    max_worker_memory_bytes: int = Field(
        64_000_000_000, ge=1, description="largest worker_memory a scan may ask for"
    )
    max_worker_disk_bytes: int = Field(
        1_000_000_000_000, ge=1, description="largest worker_disk a scan may ask for"
    )
    realtime_users: list[str] = Field(
        default_factory=list,
        description="token subjects allowed to submit to the realtime lane (priority >= 100, which "
        "ignores the running-scans cap) (JSON list)",
    )
    find_max_results: int = Field(
        1000, ge=1, description="most manifests one /scans/find answers (newest first)"
    )
    instance_env: dict[str, str] = Field(
        default_factory=dict,
        description="scanner/client-manager settings every scan instance gets, e.g. "
        f'{{"{env_name(ServerSettings, "broker_outage_timeout_s")}": "600"}} '
        "(JSON object; names and values are checked)",
    )
    broker_type: str = Field("rabbitmq", description="message broker type given to scan instances")
    broker_address: str = Field("localhost", description="broker address given to scan instances")
    broker_auth: SecretStr = Field(SecretStr(""), description="broker password/token (secret)")
    broker_management_url: str = Field(
        "http://127.0.0.1:15672",
        description="RabbitMQ's management API: each scan gets its own vhost and user through it "
        "(empty: every scan shares broker_address and broker_auth)",
    )
    broker_management_user: str = Field("guest", description="an administrator of the broker")
    broker_management_password: SecretStr = Field(
        SecretStr("guest"), description="its password (secret)"
    )
    broker_management_timeout_s: float = Field(
        10.0, gt=0, description="timeout of one call to the management API"
    )
    broker_delivery_limit: int = Field(
        10,
        ge=2,
        description="a scan message delivered this often (its consumers kept dying) is dead-lettered",
    )
    backlog_runner_short_delay_s: float = Field(
        15.0, gt=0, description="seconds between backlog checks (a new scan wakes it at once)"
    )
    backlog_pending_entry_ttl_revive_s: float = Field(
        300.0, gt=0, description="a claimed entry not started within this is claimed again"
    )
    backlog_max_attempts: int = Field(3, ge=1, description="start attempts per scan")
    backlog_retry_delay_s: float = Field(
        30.0, ge=0, description="a scan whose start failed is retried after this long"
    )
    max_running_scans: int = Field(
        0, ge=0, description="scan instances running at once (0 = no cap); realtime scans ignore it"
    )
    max_running_scans_per_cluster: dict[str, int] = Field(
        default_factory=dict, description="cap of running scan instances per cluster (JSON object)"
    )
    instance_poll_interval_s: float = Field(
        2.0, gt=0, description="seconds between checks of running scan instances"
    )
    instance_max_server_restarts: int = Field(
        3, ge=0, description="a crashed local scanner server is restarted (and resumes) this often"
    )
    scanner_progress_interval_s: float | None = Field(
        None,
        description=f"{env_name(ServerSettings, 'progress_interval_sec')} given to scan servers "
        "(unset: theirs)",
    )
    scanner_result_interval_s: float | None = Field(
        None,
        description=f"{env_name(ServerSettings, 'result_interval_sec')} given to scan servers "
        "(unset: theirs)",
    )
    scanner_kill_switch_check_interval_s: float = Field(
        5.0, gt=0, description="how often a local scan server checks whether its scan was deleted"
    )
    client_manager_poll_interval_s: float = Field(
        2.0, gt=0, description="how often the client manager checks workers and reports them"
    )
    events_keepalive_s: float = Field(
        15.0, gt=0, description="an idle event stream gets a keep-alive comment this often"
    )
    webhook_url_prefixes: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:", "http://localhost:"],
        description="webhooks may only point at URLs starting with one of these (JSON list)",
    )
    webhook_timeout_s: float = Field(10.0, gt=0, description="timeout of one webhook delivery")
    webhook_max_attempts: int = Field(
        8, ge=1, description="a delivery is tried this often before it is marked failed"
    )
    webhook_backoff_s: float = Field(
        1.0, gt=0, description="wait after a failed delivery; doubles with each attempt"
    )
    webhook_backoff_max_s: float = Field(300.0, gt=0, description="cap of one wait")
    webhook_poll_interval_s: float = Field(
        5.0, gt=0, description="deliveries due for a retry are looked at this often at least"
    )
    read_cache_ttl_s: float = Field(
        1.0, ge=0, description="status reads may answer from a copy this old (writes refresh it)"
    )
    log_level: str = Field("INFO", description="log level of SkyDriver")

    @field_validator("instance_env")
    @classmethod
    def _instance_env(cls, env: dict[str, str]) -> dict[str, str]:
        check_instance_env(env)
        return env

    @property
    def url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"
