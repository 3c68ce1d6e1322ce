"""No credential reaches any object under refs/gitxp/*, and reproduce never replays
variables that load code (gitxp issue 16, items 5 and 13).

The end-to-end tests record real runs (`gitxp run` as a real process, and a
script using `gitxp.start_run`) with a corpus of credentials in every
placement, then read every object reachable from refs/gitxp/* with the real
git CLI and search the raw bytes for each value.

Params are data the user chose to log: gitxp stores them as logged (see
docs/format.md), so the corpus puts no secret in a param.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import gitxp
from gitxp.tracking.redaction import REDACTED, redact_argv, redact_output
from tests.faults.credentials import ORDINARY_ARGV, ORDINARY_OUTPUT, SHAPES, make
from tests.gitutil import git
from tests.workflows_util import child_env, write
from tests.workflows_util import gitxp as run_gitxp

WORDY = ("password", "aws_secret", "wandb")  # shapes only their name gives away


def _all_objects(repo: Path) -> tuple[bytes, int]:
    """Every object reachable from refs/gitxp/*, inflated by `git cat-file --batch`."""
    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/gitxp/").split()
    assert refs
    listed = git(repo, "rev-list", "--objects", *refs).splitlines()
    ids = [line.split()[0] for line in listed if line.strip()]
    out = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=repo,
        input="\n".join(ids).encode() + b"\n",
        capture_output=True,
        check=True,
    ).stdout
    return out, len(ids)


def _leaks(blob: bytes, secrets: dict[str, str]) -> list[str]:
    found = []
    for where, value in secrets.items():
        for part in value.splitlines() if "PRIVATE KEY" in value else [value]:
            if "PRIVATE KEY" in part:
                continue  # the BEGIN/END lines are not the secret; the body is
            if part.encode() in blob:
                found.append(where)
    return found


# --- unit level: every shape in every placement -------------------------------------


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_is_hidden_in_every_argv_placement(shape: str) -> None:
    placements = {
        "flag": lambda v: ["--api-key", v],
        "flag=": lambda v: [f"--api-key={v}"],
        "camelCase": lambda v: ["--accessToken", v],
        "kebab": lambda v: ["--client-secret", v],
        "key": lambda v: ["--key", v],
        "passphrase": lambda v: ["--passphrase", v],
        "wandb": lambda v: ["--wandb-key", v],
        "positional": lambda v: [f"AWS_SECRET_ACCESS_KEY={v}"],
        "hydra": lambda v: [f"+db.password={v}"],
        "bearer": lambda v: ["--auth", f"Bearer {v}"],
        "header": lambda v: ["-H", f"Authorization: Bearer {v}"],
        "sh -c": lambda v: ["sh", "-c", f"python train.py --api-key={v} --lr 0.1"],
        "sh -c flag": lambda v: ["bash", "-c", f"python train.py --password '{v}'"],
        "url": lambda v: [f"postgresql://ada:{v}@db:5432/x"],
        "query": lambda v: [f"s3://bucket/x?access_key=AK1&secret_key={v}&region=eu"],
    }
    for where, place in placements.items():
        value = make(shape)
        if "\n" in value and where in ("url", "query", "header", "sh -c", "sh -c flag"):
            continue  # a key block is not a URL password
        if where == "url" and "/" in value:
            continue  # a URL carries a password with / percent-encoded (RFC 3986)
        argv = ["python", "train.py", *place(value)]
        recorded, positions = redact_argv(argv)
        text = "\x00".join(recorded)
        assert value not in text, (where, recorded)
        assert positions, where
        if shape not in WORDY:  # a shape recognisable on its own: bare, too
            assert value not in "".join(redact_argv(["python", "t.py", value])[0]), where


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_is_hidden_in_every_output_placement(shape: str) -> None:
    placements = {
        "NAME=": "export OPENAI_KEY={v}",
        "name:": "db password: {v}",
        "json": '{{"apiKey": "{v}", "lr": 0.1}}',
        "camel": "accessToken={v}",
        "flag": "running with --password {v} now",
        "argv repr": "['train.py', '--hf-token', '{v}']",
        "bearer": "Authorization: Bearer {v}",
        "query": "GET /x?access_key={v}&n=1",
        "url": "postgres://ada:{v}@db/x",
    }
    for where, line in placements.items():
        value = make(shape)
        if "\n" in value and where in ("url", "query", "bearer", "argv repr"):
            continue
        if where == "url" and "/" in value:
            continue  # a URL carries a password with / percent-encoded (RFC 3986)
        out, count = redact_output(line.format(v=value).encode())
        assert value.encode() not in out, (where, out)
        assert count >= 1
        if shape not in WORDY:
            bare = make(shape)
            assert bare.encode() not in redact_output(f"value {bare} end".encode())[0], shape


def test_values_hidden_elsewhere_are_hidden_wherever_the_output_has_them() -> None:
    value = make("password")
    out, count = redact_output(f"{value}\nargs={value!r}\n".encode(), known=[value])
    assert out == f"{REDACTED}\nargs='{REDACTED}'\n".encode() and count == 2


@pytest.mark.parametrize("line", ORDINARY_OUTPUT)
def test_ordinary_output_is_not_redacted(line: str) -> None:
    assert redact_output(line.encode()) == (line.encode(), 0)


@pytest.mark.parametrize("argv", ORDINARY_ARGV)
def test_ordinary_arguments_are_not_redacted(argv: list[str]) -> None:
    assert redact_argv(["python", *argv]) == (["python", *argv], [])


def test_a_megabyte_of_ordinary_output_comes_through_unchanged() -> None:
    # the size of the stored tail: ordinary lines in bulk keep no false positive
    # (how fast this runs is a benchmark's business, not a unit test's)
    lines = (ORDINARY_OUTPUT * 8 + [f"step {i} loss=0.{i:04d}" for i in range(400)]) * 40
    data = "\n".join(lines).encode()
    assert redact_output(data) == (data, 0)


# --- end to end: real runs, every object searched -------------------------------------

LEAKY_SCRIPT = """\
import os, sys
print('argv', sys.argv)
print(' '.join(sys.argv))
for name in sorted(os.environ):
    if name.startswith(('MY_', 'OPENAI', 'HF_', 'GITXP_ARTIFACT', 'TORCH_DIST')):
        print(os.environ[name])
printed = open({printed_file!r}).read().split('\\x00')
for line in printed[::2]:
    print(line)
for line in printed[1::2]:
    print(line, file=sys.stderr)
for line in {ordinary!r}:
    print(line)
"""


@pytest.mark.slow
def test_no_credential_reaches_any_object_under_refs_gitxp(repo: Path) -> None:
    secrets: dict[str, str] = {}

    def s(where: str, shape: str) -> str:
        secrets[where] = make(shape)
        return secrets[where]

    env = child_env(
        GITXP_ARTIFACT_STORE=f"s3://bucket/runs?access_key={s('env query access', 'aws_key_id')}"
        f"&secret_key={s('env query secret', 'aws_secret')}",
        HF_HUB_KEY=s("env HF_HUB_KEY", "password"),
        HF_TOKEN=s("env HF_TOKEN", "huggingface"),
        OPENAI_API_KEY=s("env OPENAI_API_KEY", "openai"),
        MY_DB_PASSWORD=s("env MY_DB_PASSWORD (printed raw)", "password"),
        TORCH_DIST_URL=f"postgres://ada:{s('env URL password', 'password')}@db/x",
        MY_SERVICE_TOKEN=s("env allowed by GITXP_ENV_ALLOW", "password"),
        GITXP_ENV_ALLOW="MY_SERVICE_TOKEN",
    )
    printed = [
        f"Authorization: Bearer {s('printed Bearer', 'password')}",
        f"export OPENAI_KEY={s('printed export', 'wandb')}",
        f"--password {s('printed --password', 'password')}",
        f"token: {s('printed github', 'github')}",
        f"using {s('printed github_pat', 'github_pat')}",
        f"gitlab {s('printed gitlab', 'gitlab')}",
        f"anthropic {s('printed anthropic', 'anthropic')}",
        f"slack {s('printed slack', 'slack')}",
        f"stripe {s('printed stripe', 'stripe')}",
        f"google {s('printed google', 'google')}",
        f"jwt {s('printed jwt', 'jwt')}",
        f"aws {s('printed aws id', 'aws_session_id')}",
        s("printed private key", "private_key"),
        f"signed https://s3/x?X-Amz-Signature={s('printed signature', 'wandb')}&a=1",
        f"https://ada:{s('printed URL password', 'password')}@host/x",
        f'{{"clientSecret": "{s("printed camelCase json", "password")}"}}',
    ]
    argv = [
        "--accessToken", s("argv --accessToken", "password"),
        "--key", s("argv --key", "password"),
        "--passphrase", s("argv --passphrase", "password"),
        "--wandb-key", s("argv --wandb-key", "wandb"),
        "--auth", f"Bearer {s('argv --auth Bearer', 'jwt')}",
        f"AWS_SECRET_ACCESS_KEY={s('argv positional NAME=V', 'aws_secret')}",
        f"--api-key={s('argv --api-key=V', 'openai')}",
        "--hf-token", s("argv --hf-token", "huggingface"),
        s("argv bare token", "github"),
        f"postgresql://ada:{s('argv URL password', 'password')}@db/x",
        f"--store=s3://b/x?access_key=AK1&secret_key={s('argv query', 'aws_secret')}",
        "--lr", "0.1",
    ]  # fmt: skip
    # the script's source is snapshotted with the run: what it prints comes from elsewhere
    printed_file = repo.parent / "printed.txt"
    printed_file.write_text("\x00".join(printed))
    write(
        repo / "leak.py",
        LEAKY_SCRIPT.format(printed_file=str(printed_file), ordinary=ORDINARY_OUTPUT),
    )
    # secret-looking files in the work tree are left out of the snapshot
    write(repo / ".env", f"API_KEY={s('.env file', 'password')}\n")
    write(repo / "id_rsa", s("id_rsa file", "private_key") + "\n")
    write(repo / "secrets.yaml", f"db: {s('secrets.yaml file', 'password')}\n")

    result = run_gitxp(repo, "run", "-n", "leaky", "--", "python", "leak.py", *argv, env=env)
    assert result.returncode == 0, result.stderr
    assert secrets["argv --key"] in result.stdout  # the terminal sees what was printed
    shell = f"python leak.py --api-key={s('sh -c --api-key=V', 'password')} --secretKey " + s(
        "sh -c --secretKey", "password"
    )
    result = run_gitxp(repo, "run", "-n", "shell", "--", "sh", "-c", shell, env=env)
    assert result.returncode == 0, result.stderr

    api_script = write(
        repo / "api.py",
        "import gitxp, os, sys\n"
        "with gitxp.start_run(name='api') as run:\n"
        "    run.log_metric('loss', 0.5)\n",
    )
    api_argv = [
        "--api-key", s("start_run --api-key", "openai"),
        f"--clientSecret={s('start_run --clientSecret=V', 'password')}",
        f"HF_HUB_KEY={s('start_run positional', 'password')}",
    ]  # fmt: skip
    subprocess.run(
        [sys.executable, str(api_script), *api_argv], cwd=repo, env=env, check=True, timeout=60
    )

    blob, objects = _all_objects(repo)
    assert objects > 20
    assert _leaks(blob, secrets) == [], gitxp.open(repo).run("leaky").output
    # the redacted runs still say what they hid, and ordinary output is kept as it was
    leaky = gitxp.open(repo).run("leaky")
    for line in ORDINARY_OUTPUT:
        assert line in leaky.output
    assert leaky.meta["output"]["redacted"] >= len(printed)
    assert leaky.env["variables"]["HF_HUB_KEY"] == REDACTED
    assert ".env" in json.dumps(leaky.meta)  # the snapshot says what it left out


# --- reproduce never replays variables that load code ---------------------------------

SHOW_ENV = """\
import json, os
names = {names!r}
print('ENV ' + json.dumps({{n: os.environ.get(n) for n in names}}))
"""
HOSTILE = {
    "LD_PRELOAD": "/tmp/evil/libevil.so",
    "LD_LIBRARY_PATH": "/tmp/evil/lib",
    "LD_AUDIT": "/tmp/evil/audit.so",
    "DYLD_INSERT_LIBRARIES": "/tmp/evil/evil.dylib",
    "BASH_ENV": "/tmp/evil/rc.sh",
    "ENV": "/tmp/evil/rc.sh",
    "PATH": "/tmp/evil/bin",
    "PYTHONPATH": "/tmp/evil/py",
    "PYTHONSTARTUP": "/tmp/evil/startup.py",
    "PYTHONHOME": "/tmp/evil",
    "NODE_OPTIONS": "--require /tmp/evil/hook.js",
    "PERL5OPT": "-Mevil",
    "RUBYOPT": "-revil",
    "JAVA_TOOL_OPTIONS": "-javaagent:/tmp/evil.jar",
    "CUDA_INJECTION64_PATH": "/tmp/evil/inject.so",
    "NCCL_NET_PLUGIN": "evil",
    "GIT_SSH_COMMAND": "sh /tmp/evil/x",
    "HF_TOKEN": "not-a-real-token-12345",  # a credential, whatever the recorder said
    "EVIL_NOT_ALLOWED": "1",  # not on the allow-list
    "BASH_FUNC_python%%": "() { /tmp/evil/bin/python; }",
}


def _rewrite_env(repo: Path, run_id: str, variables: dict[str, str]) -> None:
    """Give the run a new commit whose env.json records *variables* (git plumbing only)."""
    ref = f"refs/gitxp/runs/{run_id}"
    tip = git(repo, "rev-parse", ref).strip()
    env = json.loads(git(repo, "show", f"{tip}:env.json"))
    env["variables"].update(variables)
    blob = git(repo, "hash-object", "-w", "--stdin", input=json.dumps(env)).strip()
    entries = git(repo, "ls-tree", tip).splitlines()
    tree_lines = [
        f"100644 blob {blob}\tenv.json" if line.endswith("\tenv.json") else line for line in entries
    ]
    tree = git(repo, "mktree", input="\n".join(tree_lines) + "\n").strip()
    commit = git(repo, "commit-tree", tree, "-p", tip, "-m", "gitxp: hostile env").strip()
    git(repo, "update-ref", ref, commit, tip)


@pytest.mark.slow
def test_reproduce_replays_no_variable_that_loads_code(repo: Path) -> None:
    names = [*HOSTILE, "OMP_NUM_THREADS"]
    write(repo / "show_env.py", SHOW_ENV.format(names=names))
    git(repo, "add", "show_env.py")
    git(repo, "commit", "-q", "-m", "show env")
    env = child_env()
    result = run_gitxp(repo, "run", "-n", "victim", "--", "python", "show_env.py", env=env)
    assert result.returncode == 0, result.stderr
    run_id = gitxp.open(repo).run("victim").id
    _rewrite_env(repo, run_id, {**HOSTILE, "OMP_NUM_THREADS": "3"})

    # even a user who allows them by name gets none of them replayed
    allow = child_env(GITXP_ENV_ALLOW=",".join(n for n in HOSTILE if n != "EVIL_NOT_ALLOWED"))
    result = run_gitxp(repo, "reproduce", "victim", env=allow)
    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads(next(ln for ln in result.stdout.splitlines() if ln.startswith("ENV "))[4:])
    for name in HOSTILE:
        assert seen[name] == allow.get(name), name  # the reproducing user's own value
    assert seen["OMP_NUM_THREADS"] == "3"  # an allow-listed setting is replayed
    replayed = next(ln for ln in result.stderr.splitlines() if ln.startswith("  env:"))
    assert "OMP_NUM_THREADS=3" in replayed.split()  # what is replayed is printed
    assert not any(name in replayed for name in HOSTILE)
    refused = next(
        ln for ln in result.stderr.splitlines() if ln.startswith("  not replayed (loads or runs")
    )
    for name in ("LD_PRELOAD", "BASH_ENV", "PATH", "PYTHONPATH", "NODE_OPTIONS", "PERL5OPT"):
        assert f" {name}" in refused
    assert "HF_TOKEN" in result.stderr and "credential" in result.stderr
    # the JSON plan names each refused variable with its reason
    plan = json.loads(
        run_gitxp(repo, "reproduce", "victim", "--dry-run", "--format", "json", env=env).stdout
    )["plan"]
    assert plan["set_env"]["OMP_NUM_THREADS"] == "3"
    assert not set(plan["set_env"]) & set(HOSTILE)
    assert plan["refused_env"]["LD_PRELOAD"] == "loads or runs code"
    assert plan["refused_env"]["EVIL_NOT_ALLOWED"] == "not on the allow-list"


def test_a_hostile_env_json_that_is_not_a_mapping_is_not_replayed(repo: Path) -> None:
    write(repo / "show_env.py", SHOW_ENV.format(names=["OMP_NUM_THREADS"]))
    result = run_gitxp(repo, "run", "-n", "odd", "--", "python", "show_env.py")
    assert result.returncode == 0, result.stderr
    run_id = gitxp.open(repo).run("odd").id
    _rewrite_env(repo, run_id, {"BAD=NAME": "1", "OMP_NUM_THREADS": "a\x00b", "": "x"})
    result = run_gitxp(repo, "reproduce", "odd", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "not replayed (not a variable name)" in result.stderr
    assert "not replayed (not a text value): OMP_NUM_THREADS" in result.stderr
