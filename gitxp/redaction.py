"""Recognising credentials, so that no run records one by accident.

Three places can carry a secret into a run, and each has its own rule:

- environment variables (env.json): a variable whose name or value looks
  like a credential is stored as ``[redacted]`` (`looks_secret_variable`);
- the command line (run.json's `command`): the value of a flag named like a
  secret, an argument shaped like a known token, and a URL's password
  (`redact_argv`);
- the captured output of `gitxp run` (output.log): known token shapes,
  private key blocks, URL passwords and the value in `NAME=value` or
  `name: value` where the name ends like a secret (`redact_output`).

The rules for the command line and the output are narrower than those for
variable names, because both are mostly ordinary text: `--max-tokens 512`,
`tokenizer: bert` and `PWD=/home/ada` stay as they are.
"""

from __future__ import annotations

import re
from functools import cache

REDACTED = "[redacted]"

_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSW|PASSPHRASE|API_?KEY|ACCESS_?KEY|PRIVATE|CREDENTIAL|AUTH|COOKIE|SESSION",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"^(gh[pousr]_|github_pat_|glpat-|sk-|xox[baprs]-|AKIA|ASIA|hf_|AIza|eyJ)"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|://[^/\s:@]+:[^/\s@]+@"
)

# The full shapes of credentials that are recognisable on their own: OpenAI-style
# keys, GitHub, GitLab and Slack tokens, AWS access key ids, Hugging Face and Google
# API keys, and JSON web tokens.
_TOKEN_SHAPES = (
    r"sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|glpat-[\w-]{20,}"
    r"|xox[baprs]-[\w-]{10,}|(?:AKIA|ASIA)[0-9A-Z]{16}|hf_[A-Za-z0-9]{20,}|AIza[\w-]{30,}"
    r"|eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}"
)
_PRIVATE_KEY_BEGIN = r"-----BEGIN [A-Z ]*PRIVATE KEY-----"

# Command-line arguments are held to narrower rules than variable names: a
# flag is secret only when its name ends in one of these words (`--api-key`,
# `--hf-token`, `--db-pass`, `--password=...`), so `--max-tokens 512`,
# `--tokenizer bert` and `--author ada` stay as they are; a value is secret
# only when it has the full shape of a known credential.
_SECRET_FLAG = re.compile(
    r"(?:^|_)(?:password|passwd|pwd|secret|token|api_?key|apikey|access_?key|secret_?key"
    r"|private_?key|credentials?|auth_?token)$|_pass$"
)
_SECRET_ARG = re.compile(rf"^(?:{_TOKEN_SHAPES})$|{_PRIVATE_KEY_BEGIN}")
_URL_PASSWORD = re.compile(r"(://[^/\s:@]+:)[^/\s@]+@")


def looks_secret_variable(name: str, value: str) -> bool:
    """True when a variable's name or value looks like it carries a credential."""
    return bool(_SECRET_NAME.search(name) or _SECRET_VALUE.search(value))


def redact_argv(argv: list[str]) -> tuple[list[str], list[int]]:
    """*argv* with secret-looking arguments replaced, and the positions replaced.

    Replaced: the value of a flag whose name says it is a secret (the next
    argument, or what follows `=`), an argument shaped like a known token or
    private key, and the password of a URL (`scheme://user:[redacted]@host`).
    """
    out: list[str] = []
    positions: list[int] = []
    secret_flag_before = False
    for i, arg in enumerate(argv):
        new = arg
        flag, eq, value = arg.partition("=")
        is_flag = arg.startswith("-") and len(arg) > 1
        name = flag.lstrip("-").lower().replace("-", "_")
        if secret_flag_before and not is_flag:
            new = REDACTED
        elif is_flag and eq and value and _SECRET_FLAG.search(name):
            new = f"{flag}={REDACTED}"
        elif _SECRET_ARG.search(value if is_flag and eq else arg):
            new = f"{flag}={REDACTED}" if is_flag and eq else REDACTED
        else:
            new = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", arg)
        secret_flag_before = is_flag and not eq and bool(_SECRET_FLAG.search(name))
        if new != arg:
            positions.append(i)
        out.append(new)
    return out, positions


def command_record(argv: list[str], **fields: object) -> dict[str, object]:
    """run.json's `command`: *argv* with secret-looking arguments redacted, then *fields*,
    and `redacted` (the positions replaced) when anything was."""
    recorded, redacted = redact_argv(argv)
    command: dict[str, object] = {"argv": recorded, **fields}
    if redacted:
        command["redacted"] = redacted
    return command


_KEY_END = re.compile(rb"-----END [A-Z ]*PRIVATE KEY-----")


@cache
def _output_rules() -> list[tuple[re.Pattern[bytes], bytes]]:
    """The output patterns, each with its replacement (compiled on first use: most
    processes that import gitxp never store output)."""
    redacted = REDACTED.encode()
    return [
        # a private key, from its first line to its last (or to the end of the output)
        (
            re.compile(
                _PRIVATE_KEY_BEGIN.encode() + rb".*?(?:" + _KEY_END.pattern + rb"|\Z)", re.DOTALL
            ),
            redacted,
        ),
        (re.compile(rb"(?<![\w-])(?:" + _TOKEN_SHAPES.encode() + rb")(?![\w-])"), redacted),
        (re.compile(_URL_PASSWORD.pattern.encode()), rb"\g<1>" + redacted + b"@"),
        # NAME=value, name: value, "api_key": "value" -- when the name *ends* like a
        # secret (what comes before the word does not matter; what follows it does).
        # A tokenizer's special tokens (`'pad_token': '<pad>'`, `unk_token=[UNK]`)
        # are not credentials: those names, and values in <> or [], are kept.
        # The lookahead on the first letters lets the scan skip most bytes: 2.5x faster.
        (
            re.compile(
                rb"(?i)(?=[pstac])((?:pass(?:wd|word|phrase)|secret(?:[_-]?key)?"
                rb"|(?<!unk_)(?<!sep_)(?<!pad_)(?<!cls_)(?<!bos_)(?<!eos_)(?<!mask_)token"
                rb"|(?:api|access|private)[_-]?key|credentials?|auth[_-]?token)"
                rb"[\"']?[ \t]*[=:][ \t]*[\"']?)"
                rb"(?![\[<])(?!\*+[\s\"',;]|\*+\Z)([^\s\"',;]+)"
            ),
            rb"\g<1>" + redacted,
        ),
    ]


def redact_output(data: bytes, cut: bool = False) -> tuple[bytes, int]:
    """Captured output with secret-looking text replaced, and how many replacements.

    For output.log: what a command printed goes to the terminal as it was, and
    into the run with token-shaped strings, private keys, URL passwords and
    the values of secret-named settings replaced by ``[redacted]``. *cut* says
    *data* is the tail of longer output, so a private key may have lost its
    first line: then everything up to a key's last line is replaced too.
    """
    count = 0
    end = _KEY_END.search(data) if cut else None
    if end is not None and b"-----BEGIN " not in data[: end.start()]:
        # the rest of a key whose first line fell outside the stored tail
        data = REDACTED.encode() + data[end.end() :]
        count += 1
    for pattern, replacement in _output_rules():
        data, n = pattern.subn(replacement, data)
        count += n
    return data, count
