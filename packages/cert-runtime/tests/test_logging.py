"""JSON logging: one object per line, correlation ids across threads and tasks, redaction,
robustness against hostile records, rotation, idempotent configuration."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cert.runtime.errors import InvalidInputError
from cert.runtime.logging import (
    REDACTED,
    JsonFormatter,
    TextFormatter,
    configure_from_settings,
    configure_logging,
    correlation_scope,
    get_correlation_id,
    get_logger,
    log_event,
    redact,
)

pytestmark = pytest.mark.usefixtures("restore_cert_logger")


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def setup_json(level: str = "INFO") -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    configure_logging(level, "json", stream=stream)
    return get_logger("cert.test"), stream


def test_info_logging_writes_one_json_object_per_line() -> None:
    log, stream = setup_json()
    log.info("analysis done %d", 3, extra={"model": "gpt2", "tokens": 12})
    log.debug("hidden")
    (record,) = lines(stream)
    assert record["message"] == "analysis done 3"
    assert record["level"] == "INFO"
    assert record["logger"] == "cert.test"
    assert record["model"] == "gpt2"
    assert record["tokens"] == 12
    assert record["correlation_id"] is None
    assert record["timestamp"].endswith("+00:00")


def test_correlation_scope_sets_and_restores() -> None:
    log, stream = setup_json()
    assert get_correlation_id() is None
    with correlation_scope("req-1") as cid:
        assert cid == "req-1"
        with correlation_scope() as inner:
            assert len(inner) == 32
            log.info("inner")
        log.info("outer")
    assert get_correlation_id() is None
    inner_rec, outer_rec = lines(stream)
    assert inner_rec["correlation_id"] == inner
    assert outer_rec["correlation_id"] == "req-1"


def test_correlation_ids_do_not_leak_between_threads() -> None:
    log, stream = setup_json()
    barrier = threading.Barrier(6)

    def worker(i: int) -> None:
        with correlation_scope(f"thread-{i}"):
            barrier.wait(5)  # all scopes are open at the same time
            for _ in range(20):
                log.info("work", extra={"worker": i})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    records = lines(stream)
    assert len(records) == 120
    assert all(r["correlation_id"] == f"thread-{r['worker']}" for r in records)


def test_correlation_ids_do_not_leak_between_asyncio_tasks() -> None:
    log, stream = setup_json()

    async def handle(i: int) -> str | None:
        with correlation_scope(f"task-{i}"):
            for _ in range(5):
                await asyncio.sleep(0)  # interleave with the other tasks
                log.info("step", extra={"task": i})
            return get_correlation_id()

    async def main() -> list[str | None]:
        return list(await asyncio.gather(*(handle(i) for i in range(8))))

    assert asyncio.run(main()) == [f"task-{i}" for i in range(8)]
    records = lines(stream)
    assert len(records) == 40
    assert all(r["correlation_id"] == f"task-{r['task']}" for r in records)


def test_secrets_are_redacted_in_messages_extras_and_tracebacks() -> None:
    log, stream = setup_json()
    key = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345"
    log.info(
        "calling API with %s",
        key,
        extra={
            "headers": {"Authorization": "Bearer abc.def.ghi-123456", "Accept": "json"},
            "api_key": key,
            "max_tokens": 256,
        },
    )
    try:
        raise RuntimeError(f"auth failed for password=hunter2xyz and {key}")
    except RuntimeError:
        log.exception("request failed")
    text = stream.getvalue()
    for secret in (key, "abc.def.ghi-123456", "hunter2xyz"):
        assert secret not in text
    first, second = lines(stream)
    assert first["headers"] == {"Authorization": REDACTED, "Accept": "json"}
    assert first["api_key"] == REDACTED
    assert first["max_tokens"] == 256  # a count, not a secret
    assert "RuntimeError" in second["exception"]


def test_hostile_records_never_raise() -> None:
    log, stream = setup_json()

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

        __repr__ = __str__

    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    log.info("bad args %s %s", 1)  # too few args
    log.info(
        "obj", extra={"obj": Unprintable(), "cycle": cyclic, "raw": b"\xff\xfe token=abc123456"}
    )
    log.info({"not": "a string", "password": "pw"})  # type: ignore[arg-type]
    log.info(Unprintable())  # type: ignore[arg-type]
    log.info("big", extra={"blob": "x" * 200_000, "nan": float("nan")})
    records = lines(stream)
    assert len(records) == 5
    assert "unformattable" in records[0]["message"]
    assert "<unprintable Unprintable>" in records[3]["message"]
    assert records[1]["cycle"] == {"self": "[CYCLE]"}
    assert "abc123456" not in records[1]["raw"]
    assert "pw" not in records[2]["message"].replace("password", "")


def test_formatter_survives_an_exploding_extra_via_fallback() -> None:
    class Exploding(dict):  # type: ignore[type-arg]
        def items(self) -> Any:
            raise RuntimeError("boom")

    record = logging.LogRecord("cert", logging.INFO, __file__, 1, "msg token=abcdef123", None, None)
    record.weird = Exploding(a=1)
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == f"msg token={REDACTED}"
    assert "format_error" in out


def test_text_format_includes_correlation_id_and_redacts() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "text", stream=stream)
    with correlation_scope("abc"):
        get_logger("cert.test").debug("key %s", "sk-" + "a" * 30)
    line = stream.getvalue()
    assert "[abc]" in line
    assert "DEBUG cert.test" in line
    assert "aaaaaaaaaaaaaaaaaaaa" not in line


def test_configure_is_idempotent_and_env_driven(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setenv("CERT_LOG_LEVEL", "warning")
    monkeypatch.setenv("CERT_LOG_FORMAT", "json")
    for _ in range(3):
        logger = configure_logging(stream=stream)
    assert logger.level == logging.WARNING
    assert len([h for h in logger.handlers if not isinstance(h, logging.NullHandler)]) == 1
    get_logger("cert.test").warning("once")
    get_logger("cert.test").info("filtered")
    assert len(lines(stream)) == 1


def test_default_stream_is_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    handler = next(h for h in logging.getLogger("cert").handlers if hasattr(h, "stream"))
    assert handler.stream is sys.stderr  # type: ignore[attr-defined]


def test_rotation_writes_json_to_rotating_files(tmp_path: Path) -> None:
    path = tmp_path / "cert.log"
    configure_logging("INFO", "json", rotate_path=str(path), max_bytes=2_000, backup_count=2)
    log = get_logger("cert.test")
    for i in range(100):
        log.info("line %d", i, extra={"payload": "x" * 50})
    for handler in logging.getLogger("cert").handlers:
        handler.flush()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["cert.log", "cert.log.1", "cert.log.2"]
    for f in files:
        for line in f.read_text().splitlines():
            assert json.loads(line)["logger"] == "cert.test"


def test_breaker_and_health_logs_flow_through(tmp_path: Path) -> None:
    from cert.runtime.breaker import CircuitBreaker

    _log, stream = setup_json()
    breaker = CircuitBreaker("dep", failure_threshold=1)
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    (record,) = lines(stream)
    assert record["message"] == "circuit state change"
    assert record["breaker"] == "dep"
    assert record["to_state"] == "open"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"level": "LOUD"}, "level"),
        ({"level": -5}, "level"),
        ({"level": True}, "level"),
        ({"fmt": "xml"}, "fmt"),
        ({"logger": 3}, "logger"),
        ({"rotate_path": ""}, "rotate_path"),
        ({"rotate_path": "/nonexistent-dir/sub/cert.log"}, "rotate_path"),
        ({"rotate_path": "x.log", "max_bytes": -1}, "max_bytes"),
    ],
)
def test_configure_bad_input(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        configure_logging(**kwargs)


def test_env_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERT_LOG_LEVEL", "chatty")
    with pytest.raises(InvalidInputError, match="CERT_LOG_LEVEL='chatty'"):
        configure_logging()


@pytest.mark.parametrize("cid", ["", "  ", 42, "x" * 300, "abc\ninjected", "a\x1b[31m"])
def test_bad_correlation_ids(cid: Any) -> None:
    with pytest.raises(InvalidInputError, match="correlation id"), correlation_scope(cid):
        pass


@pytest.mark.parametrize("name", ["", None, 5])
def test_bad_logger_names(name: Any) -> None:
    with pytest.raises(InvalidInputError, match="logger name"):
        get_logger(name)


# ------------------------------------------------------------------ redact()
@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("key sk-proj-ABCDEFGHIJKLMNOPQRSTUV here", "ABCDEFGHIJKLMNOPQRSTUV"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi"),
        ("aws AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
        ("gh ghp_" + "a1" * 18, "a1a1a1a1a1a1"),
        ('{"password": "hunter22"}', "hunter22"),
        ("client_secret='s3cr3t-value'", "s3cr3t-value"),
        ("url?api_key=zzzzzzzz&x=1", "zzzzzzzz"),
        ("pa\u017f\u017fword=hunter22", "hunter22"),  # long s: (?i) reads it as "s"
        ("api_\u212aey=kelvin-sign-value", "kelvin-sign-value"),
    ],
)
def test_redact_strings(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_redact_keys_and_structure() -> None:
    data = {
        "user": "ann",
        "Password": "pw",
        "X-Api-Key": "k",
        "nested": [{"auth_token": "t", "token_count": 5}, ("Bearer abcdefghijk",)],
        "max_tokens": 100,
        3: "non-string key",
    }
    out = redact(data)
    assert out == {
        "user": "ann",
        "Password": REDACTED,
        "X-Api-Key": REDACTED,
        "nested": [{"auth_token": REDACTED, "token_count": 5}, (f"Bearer {REDACTED}",)],
        "max_tokens": 100,
        3: "non-string key",
    }
    assert data["Password"] == "pw"  # the input is not modified


def test_redact_deep_nesting_is_cut_off() -> None:
    deep: Any = "leaf"
    for _ in range(100):
        deep = [deep]
    out = redact(deep)
    for _ in range(32):
        out = out[0]
    assert out == "[TRUNCATED: nested too deeply]"


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=200))
def test_redact_is_idempotent_and_total(text: str) -> None:
    once = redact(text)
    assert isinstance(once, str)
    assert redact(once) == once


@given(st.from_regex(r"sk-[A-Za-z0-9_-]{16,40}", fullmatch=True), st.text(max_size=30))
def test_any_sk_key_is_masked(key: str, prefix: str) -> None:
    assert key not in redact(f"{prefix} {key} ")


def test_extras_cannot_overwrite_the_fixed_fields() -> None:
    log, stream = setup_json()
    log.info("real", extra={"level": "fake", "timestamp": 0, "logger": "x"})
    (record,) = lines(stream)
    assert record["level"] == "INFO"
    assert record["logger"] == "cert.test"
    assert (record["field_level"], record["field_timestamp"], record["field_logger"]) == (
        "fake",
        0,
        "x",
    )


def test_log_event_accepts_field_names_that_crash_stdlib_extra() -> None:
    log, stream = setup_json()
    with pytest.raises(KeyError):  # what the stdlib does with a reserved name
        log.info("x", extra={"name": "model-a"})
    log_event(log, "INFO", "loaded 100% of %s", name="model-a", msg="m", args=(1,), tokens=3)
    log_event(log, logging.DEBUG, "filtered out")
    (record,) = lines(stream)
    assert record["message"] == "loaded 100% of %s"
    assert record["field_name"] == "model-a"
    assert record["field_msg"] == "m"
    assert record["field_args"] == [1]
    assert record["tokens"] == 3


def test_log_event_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="logger"):
        log_event("cert", "INFO", "x")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="level"):
        log_event(get_logger("cert.test"), "LOUD", "x")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@given(
    message=st.text(max_size=200),
    extras=st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True), json_values),
)
def test_any_record_formats_to_exactly_one_json_line(message: str, extras: dict[str, Any]) -> None:
    record = logging.LogRecord("cert.prop", logging.INFO, __file__, 1, message, None, None)
    for key, value in extras.items():
        if key not in record.__dict__:
            setattr(record, key, value)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "\r" not in line
    assert len(line.splitlines()) == 1
    parsed = json.loads(line)
    assert parsed["level"] == "INFO"
    assert isinstance(parsed["message"], str)


SECRET_SHAPES = [
    st.from_regex(r"sk-(proj-|ant-)?[A-Za-z0-9]{20,40}", fullmatch=True),
    st.from_regex(r"AKIA[0-9A-Z]{16}", fullmatch=True),
    st.from_regex(r"ghp_[A-Za-z0-9]{36}", fullmatch=True),
    st.from_regex(r"xoxb-[0-9]{10,12}-[A-Za-z0-9]{10,24}", fullmatch=True),
    st.from_regex(r"eyJ[A-Za-z0-9_-]{10}\.eyJ[A-Za-z0-9_-]{10}\.[A-Za-z0-9_-]{10}", fullmatch=True),
]


@given(
    secret=st.one_of(*SECRET_SHAPES),
    before=st.text(alphabet=" abc,;:()[]", max_size=20),
    after=st.text(alphabet=" abc,;:()[]", max_size=20),
)
def test_known_secret_shapes_never_survive(secret: str, before: str, after: str) -> None:
    text = f"{before} {secret} {after}"
    assert secret not in redact(text)
    assert secret not in json.dumps(redact({"note": text, "nested": [text]}))


@given(
    key=st.sampled_from(["password", "api_key", "token", "secret", "Authorization", "db_password"]),
    value=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789!@#", min_size=4, max_size=30),
    sep=st.sampled_from(["=", ": ", " = ", '": "']),
)
def test_key_value_pairs_in_text_are_masked(key: str, value: str, sep: str) -> None:
    quote = '"' if sep == '": "' else ""
    text = f"{quote}{key}{sep}{value}{quote} rest"
    out = redact(text)
    assert value not in out.replace(key, "")


def test_configure_from_settings_uses_the_log_file(tmp_path: Path) -> None:
    from cert.runtime.config import RuntimeSettings

    path = tmp_path / "from-env.log"
    settings = RuntimeSettings.from_env(
        {"CERT_LOG_FILE": str(path), "CERT_LOG_LEVEL": "debug", "CERT_LOG_FORMAT": "json"}
    )
    configure_from_settings(settings)
    get_logger("cert.test").debug("to the file")
    for handler in logging.getLogger("cert").handlers:
        handler.flush()
    (line,) = path.read_text().splitlines()
    assert json.loads(line)["message"] == "to the file"
    with pytest.raises(InvalidInputError, match="settings"):
        configure_from_settings({"log_level": "INFO"})  # type: ignore[arg-type]


def test_text_and_json_handlers_on_one_logger_do_not_disturb_each_other() -> None:
    text_stream, json_stream = io.StringIO(), io.StringIO()
    logger = logging.getLogger("cert.test")
    text_handler = logging.StreamHandler(text_stream)
    text_handler.setFormatter(TextFormatter())
    json_handler = logging.StreamHandler(json_stream)
    json_handler.setFormatter(JsonFormatter())
    logger.addHandler(text_handler)
    logger.addHandler(json_handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("no id here %s", "arg")
        with correlation_scope("cid-7"):
            logger.info("with id")
    finally:
        logger.removeHandler(text_handler)
        logger.removeHandler(json_handler)
    first, second = lines(json_stream)
    assert first["correlation_id"] is None  # not the text formatter's "-"
    assert first["message"] == "no id here arg"
    assert second["correlation_id"] == "cid-7"
    assert "[-] no id here arg" in text_stream.getvalue()
    assert "[cid-7] with id" in text_stream.getvalue()


_PIECES = [
    *"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.=: '\"",
    *["sk-", "Bearer ", "token=", "eyJ", "AKIA", "ghp_", "xoxb-", "AIza", "api_key: "],
    *["ſ", "\u212a", "PAſſWORD=", "api_\u212aey="],  # characters (?i) folds onto ASCII
    *["://", "postgres://", "u:p@", "@", "/", "passphrase=", "privateKey=", "dbPassword: "],
    *["prompt_token=", "eos_token: "],
]


@given(st.lists(st.sampled_from(_PIECES), max_size=80).map("".join))
def test_the_cheap_precheck_never_skips_a_string_a_pattern_would_change(text: str) -> None:
    from cert.runtime import logging as cert_logging

    full, before = text, None
    while full != before:  # redact() applies the patterns until nothing changes
        before = full
        for pattern, replacement in cert_logging._SECRET_VALUE_PATTERNS:
            full = pattern.sub(replacement, full)
    if full != text:
        assert cert_logging._may_hold_secret(text)
    assert redact(text) == full


# ------------------------------------------------------------------ issue 15: redaction gaps
@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connect postgres://admin:hunter2@db/app failed", "hunter2"),
        ("dsn=mysql+pymysql://svc:p%40ss@db:3306/x", "p%40ss"),
        ("https://u:we@ird@host/path", "we@ird"),
        ("passphrase=correct-horse", "correct-horse"),
        ("gpg_passphrase: 'battery staple'", "battery staple"),
        ("privateKey=MIIEvQIBADANBg", "MIIEvQIBADANBg"),
        ('{"clientSecret": "cs-123456"}', "cs-123456"),
        ("dbPassword=hunter2", "hunter2"),
        ("accessToken=abcdef123", "abcdef123"),
        ("apiKey: zzzzzzzz", "zzzzzzzz"),
    ],
)
def test_redact_urls_passphrases_and_camel_case(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_redaction_is_idempotent_when_one_mask_exposes_another_secret() -> None:
    text = "postgres://passphrase=@'u:p@"  # masking "passphrase=@" exposes a URL password
    once = redact(text)
    assert redact(once) == once
    assert ":p@" not in once


def test_urls_without_a_password_and_token_counts_are_kept() -> None:
    for text in [
        "prompt_token=512",
        "completion_token: 17 max_token=4096",
        "promptToken=512",
        "eos_token=<|endoftext|>",
        "http://host:8080/path?x=1",
        "postgres://admin@db/app",
    ]:
        assert redact(text) == text
    assert "hunter2" not in redact("new_token=hunter2 prompt_token=512")
    assert redact("new_token=hunter2 prompt_token=512").endswith("prompt_token=512")


def test_camel_case_and_passphrase_keys_are_secret_keys() -> None:
    data = {
        "privateKey": "k",
        "clientSecret": "s",
        "passphrase": "p",
        "sshPassphrase": "p",
        "APIKey": "a",
        "prompt_token": 512,
        "promptToken": 512,
        "eos_token": "<eos>",
        "max_tokens": 100,
    }
    out = redact(data)
    assert out == {
        "privateKey": REDACTED,
        "clientSecret": REDACTED,
        "passphrase": REDACTED,
        "sshPassphrase": REDACTED,
        "APIKey": REDACTED,
        "prompt_token": 512,
        "promptToken": 512,
        "eos_token": "<eos>",
        "max_tokens": 100,
    }


@given(
    scheme=st.sampled_from(["postgres", "postgresql+psycopg", "redis", "https", "amqp"]),
    user=st.from_regex(r"[a-z][a-z0-9_.]{0,10}", fullmatch=True),
    password=st.from_regex(r"[A-Za-z0-9!$%*+~@]{6,20}", fullmatch=True),
    host=st.from_regex(r"[a-z][a-z0-9.-]{0,12}", fullmatch=True),
)
def test_any_password_in_a_url_never_survives(
    scheme: str, user: str, password: str, host: str
) -> None:
    url = f"{scheme}://{user}:{password}@{host}/db"
    out = redact(f"error talking to {url}: timeout")
    assert f":{password}@" not in out
    assert out == f"error talking to {scheme}://{user}:{REDACTED}@{host}/db: timeout"


@given(
    prefix=st.sampled_from(["", "db", "ssh_", "client-", "my"]),
    name=st.sampled_from(["Password", "Passphrase", "Secret", "PrivateKey", "ApiKey", "Token"]),
    value=st.from_regex(r"[a-z0-9]{6,20}", fullmatch=True),
)
def test_camel_case_key_value_pairs_in_text_are_masked(prefix: str, name: str, value: str) -> None:
    key = prefix + (name if prefix else name[0].lower() + name[1:])
    out = redact(f"{key}={value} rest")
    assert value not in out
    assert out.endswith(" rest")
