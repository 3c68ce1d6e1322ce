"""Secrets a command prints reach the terminal but not the run's stored output.log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import gitxp
from gitxp.ops.launch import launch
from gitxp.tracking.redaction import REDACTED, redact_output
from tests.gitutil import git
from tests.workflows_util import gitxp as run_gitxp
from tests.workflows_util import write

# synthetic credentials of the real shapes, built here so no scanner mistakes this file
OPENAI = "sk-" + "Ab3" * 10
GITHUB = "ghp_" + "x7Y" * 12
HF = "hf_" + "Qw9" * 10
AWS_ID = "AKIA" + "ABCDEFGHIJKLMNOP"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl"
KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
PRIVATE_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"using key {OPENAI} now", f"using key {REDACTED} now"),
        (f"token={GITHUB}", f"token={REDACTED}"),
        (f"HF: {HF}.", f"HF: {REDACTED}."),
        (f"id {AWS_ID}", f"id {REDACTED}"),
        (f"Authorization: Bearer {JWT}", f"Authorization: Bearer {REDACTED}"),
        ("WANDB_API_KEY=abc123def", f"WANDB_API_KEY={REDACTED}"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI", f"AWS_SECRET_ACCESS_KEY={REDACTED}"),
        ("DJANGO_SECRET_KEY = abc", f"DJANGO_SECRET_KEY = {REDACTED}"),
        ("db password: hunter2", f"db password: {REDACTED}"),
        ('{"api_key": "xyz-123", "lr": 0.1}', f'{{"api_key": "{REDACTED}", "lr": 0.1}}'),
        ("Secret = 's3cr3t'", f"Secret = '{REDACTED}'"),
        ("url postgres://ada:pw0rd@db:5432/x", f"url postgres://ada:{REDACTED}@db:5432/x"),
        (f"key:\n{PRIVATE_KEY}\ndone", f"key:\n{REDACTED}\ndone"),
    ],
)
def test_secret_looking_text_is_replaced(text: str, expected: str) -> None:
    out, count = redact_output(text.encode())
    assert out.decode() == expected
    assert count == 1


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=512 tokenizer: bert num_tokens: 5",
        "PWD=/home/ada HOME=/home/ada",
        "epoch 3: loss=0.25 acc=0.91",
        "password=\n",  # nothing to hide
        f"token: {REDACTED} and password: ****",  # already hidden
        "sk-short and hf_tiny are not tokens",
        # a tokenizer's special tokens, as transformers prints them
        "BertTokenizerFast(special_tokens={'unk_token': '[UNK]', 'sep_token': '[SEP]', "
        "'pad_token': '[PAD]', 'cls_token': '[CLS]', 'mask_token': '[MASK]'})",
        "eos_token=</s> bos_token: <s> token: <pad>",
        "see https://example.com:8080/path and ssh git@host:repo.git",
        "the BEGIN of nothing -----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----",
    ],
)
def test_ordinary_output_is_kept_as_it_is(text: str) -> None:
    assert redact_output(text.encode()) == (text.encode(), 0)


def test_a_key_cut_by_the_stored_tail_is_still_hidden() -> None:
    no_end = f"start\n-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n"
    assert redact_output(no_end.encode()) == (f"start\n{REDACTED}".encode(), 1)
    no_begin = f"{KEY_BODY}\n-----END PRIVATE KEY-----\nafter\n"
    assert redact_output(no_begin.encode(), cut=True) == (f"{REDACTED}\nafter\n".encode(), 1)
    # output that was not cut keeps a stray last line: it cannot have lost a key's first
    assert redact_output(no_begin.encode()) == (no_begin.encode(), 0)


def test_a_key_cut_by_the_output_cap_is_not_stored(repo: Path) -> None:
    script = write(
        repo / "key.py",
        f"print('x' * 5000)\nprint({PRIVATE_KEY!r})\nfor i in range(3): print(f'line {{i}}')\n",
    )
    cap = len(PRIVATE_KEY) - 10 + len("line 0\n") * 3  # the key's first line falls outside
    result = launch(
        [sys.executable, str(script)], name="key", repo=repo, stream=False, output_cap=cap
    )
    assert result.output_redacted == 1
    stored = gitxp.open(repo).run("key").output
    assert stored.startswith("[gitxp: output truncated")
    assert KEY_BODY not in stored and "PRIVATE KEY" not in stored
    assert stored.splitlines()[1:] == [REDACTED, "line 0", "line 1", "line 2"]


def test_several_secrets_are_counted_and_binary_output_survives() -> None:
    data = b"\xff\xfe binary " + OPENAI.encode() + b"\n" + b"API_TOKEN=abc\n\x00end"
    out, count = redact_output(data)
    assert count == 2
    assert (
        out
        == b"\xff\xfe binary "
        + REDACTED.encode()
        + b"\nAPI_TOKEN="
        + REDACTED.encode()
        + b"\n\x00end"
    )


def test_gitxp_run_shows_secrets_but_stores_them_redacted(repo: Path) -> None:
    write(
        repo / "leaky.py",
        f"print('logging in with {OPENAI}')\nprint('HF_TOKEN={HF}')\nprint('loss=0.5')\n",
    )
    result = run_gitxp(repo, "run", "-n", "leaky", "--", "python", "leaky.py")
    assert result.returncode == 0, result.stderr
    assert OPENAI in result.stdout and HF in result.stdout  # the terminal sees what was printed
    assert "2 secret-looking strings replaced by [redacted] in the stored output.log" in (
        result.stderr
    )
    record = gitxp.open(repo).run("leaky")
    stored = git(repo, "show", f"{record.ref}:output.log")
    assert OPENAI not in stored and HF not in stored
    assert stored.splitlines() == [
        f"logging in with {REDACTED}",
        f"HF_TOKEN={REDACTED}",
        "loss=0.5",
    ]
    meta = json.loads(git(repo, "show", f"{record.ref}:run.json"))
    assert meta["output"]["redacted"] == 2
    assert meta["output"]["bytes"] == len(result.stdout.encode())


def test_clean_output_reports_no_redaction(repo: Path) -> None:
    result = run_gitxp(repo, "run", "-n", "clean", "--", "echo", "max_tokens=512")
    assert result.returncode == 0, result.stderr
    assert "redacted" not in result.stderr
    record = gitxp.open(repo).run("clean")
    assert record.output == "max_tokens=512\n"
    assert "redacted" not in record.meta["output"]
