"""Recognising credentials, so that no run records one by accident.

Three places can carry a secret into a run, and each has its own rule:

- environment variables (env.json): a variable whose name or value looks
  like a credential is stored as ``[redacted]`` (`looks_secret_variable`);
- the command line (run.json's `command`): the value of a flag or of a
  positional `NAME=value` named like a secret, text shaped like a known
  token, a URL's password, a query-string credential, a `Bearer` token, and
  the same inside a shell string (`sh -c "..."`) (`redact_argv`);
- the captured output of `gitxp run` (output.log): every value redacted from
  the command line or found in a secret-named variable of the command's
  environment, wherever it appears, plus the text rules above and
  `NAME=value`, `name: value`, `--name value` where the name ends like a
  secret (`redact_output`).

Names are read as words, whatever their spelling: `accessToken`,
`ACCESS_TOKEN`, `access-token` and `access.token` all end in `token`. The
rules for the command line and the output are narrower than those for
variable names, because both are mostly ordinary text: `--max-tokens 512`,
`sort_key: loss`, `'pad_token': '[PAD]'` and `PWD=/home/ada` stay as they are.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from functools import cache

REDACTED = "[redacted]"
# Values redacted elsewhere that are shorter than this are not searched for in
# the output: they would match ordinary text.
MIN_KNOWN_SECRET = 6

_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSW|PASSPHRASE|API_?KEY|ACCESS_?KEY|PRIVATE|CREDENTIAL|AUTH|COOKIE|SESSION",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"^(gh[pousr]_|github_pat_|glpat-|sk-|xox[baprs]-|AKIA|ASIA|hf_|AIza|eyJ)"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|://[^/\s:@]+:[^/\s@]+@"
)

# The full shapes of credentials that are recognisable on their own: OpenAI and
# Anthropic keys (sk-...), GitHub, GitLab and Slack tokens, AWS key ids, Hugging
# Face, Google, Stripe, npm, PyPI and Replicate keys, and JSON web tokens.
_TOKEN_SHAPES = (
    r"sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}"
    r"|gl(?:pat|dt|rt|ptt|cbt|soat|ft)-[\w-]{20,}|xox[abeprs]-[\w-]{10,}|xapp-[\w-]{10,}"
    r"|(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}|hf_[A-Za-z0-9]{20,}"
    r"|AIza[\w-]{30,}|ya29\.[\w-]{20,}|GOCSPX-[\w-]{20,}"
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{20,}"
    r"|npm_[A-Za-z0-9]{30,}|pypi-[\w-]{40,}|r8_[A-Za-z0-9]{30,}"
    r"|eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}"
)
_PRIVATE_KEY_BEGIN = r"-----BEGIN [A-Z ]*PRIVATE KEY-----"
_SECRET_ARG = re.compile(rf"^(?:{_TOKEN_SHAPES})$|{_PRIVATE_KEY_BEGIN}")

# --- names -------------------------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")
# The last word(s) of a secret's name; `pass` only after another word (`db_pass`,
# not `--pass 2`); glued spellings (`apikey`, `hftoken`, `dbpassword`) too.
_SECRET_END = re.compile(
    r"(?:^|_)(?:password|passwd|pwd|passphrase|secret|token|credentials?|auth|authorization"
    r"|cookie|key|secret_?key|api_?key|access_?key|private_?key)$|_pass$"
    r"|(?:pass(?:word|wd|phrase)|secret)$"
    r"|(?:access|auth|api|hf|hub|bot|refresh|session|bearer|oauth|secret|private|client|wandb"
    r"|openai|github|gitlab|slack|stripe|app|master|encryption|signing|license|account)"
    r"(?:key|token)$"
)
# A word before `key`/`token` that makes the name ordinary: a tokenizer's special
# tokens, a sort or metric key, a count of tokens.
_ORDINARY_BEFORE = re.compile(
    r"(?:^|_)(?:pad|eos|bos|unk|sep|cls|mask|special|start|end|image|audio|video|max|min|num|n"
    r"|sort|metric|monitor|primary|foreign|group|hash|cache|column|col|label|target|feature"
    r"|index|join|partition|lookup|dict|map|data|dataset|input|output|text|split|best|ckpt"
    r"|checkpoint|state|log|prompt|eval|sample|batch|seq|vocab|random|rng|seed|shard|hotkey"
    r"|keyboard|dict)_(?:key|token)$"
)
# Switches that say whether to use a secret, not what it is (`--no-auth`, `--use-auth-token`).
_SWITCH = re.compile(r"^(?:no|use|disable|enable|skip|require|with|without|show|print|has|is)_")
_ASSIGNMENT = re.compile(r"^\+{0,2}[A-Za-z_][\w.-]*$")  # NAME in `NAME=value`, `+a.b=c`


def name_words(name: str) -> str:
    """*name* as lowercase words joined by `_`: accessToken, ACCESS-TOKEN -> access_token."""
    return _SEPARATORS.sub("_", _CAMEL.sub("_", name)).strip("_").lower()


def secret_name(name: str) -> bool:
    """True when *name* (of a flag, setting or variable) ends like a secret's name.

    `--api-key`, `accessToken`, `HF_HUB_KEY`, `db.password`, `--auth` are;
    `--max-tokens`, `pad_token`, `sort_key`, `--no-auth`, `--pass` are not.
    """
    words = name_words(name)
    return bool(
        _SECRET_END.search(words)
        and not _ORDINARY_BEFORE.search(words)
        and not _SWITCH.match(words)
    )


def looks_secret_variable(name: str, value: str) -> bool:
    """True when a variable's name or value looks like it carries a credential."""
    return bool(
        _SECRET_NAME.search(name)
        or secret_name(name)
        or _SECRET_VALUE.search(value)
        or find_secrets(value)
    )


# --- rules for free text -------------------------------------------------------------
# Each rule is (pattern, check): group 1 is kept, group 2 is the secret and ends the
# match; *check*, when given, decides from the match whether it is one.

_VALUE = r"(?![\[<])(?!\*+[\s\"',;&]|\*+\Z)(?P<secret>[^\s\"',;&]+)"
_NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_NOT_VALUES = frozenset(
    {"none", "null", "true", "false", "nil", "undefined", "bearer", "basic", "digest", "token"}
)


def _name_before(m: re.Match[bytes]) -> str:
    """The whole name a match of the setting rule ends: `api_` + `key` -> `api_key`."""
    data, start = m.string, m.start()
    begin = start
    while begin > 0 and data[begin - 1] in _NAME_CHARS and start - begin < 100:
        begin -= 1
    return (data[begin:start] + m.group("name")).decode("ascii", "replace")


def _setting_check(m: re.Match[bytes]) -> bool:
    """`NAME=value` / `name: value`: the full name ends like a secret, and is more than
    a lone `key`, `auth` or `pass` (a dict's 'key': ..., an auth mode)."""
    name = name_words(_name_before(m))
    if name in ("key", "auth", "pwd", "cookie"):
        return False  # PWD=/home/ada, `key: loss`
    return (
        secret_name(name)
        and m.group("secret").lower().decode("ascii", "replace") not in _NOT_VALUES
    )


def _flag_check(m: re.Match[bytes]) -> bool:
    return secret_name(m.group("name").decode("ascii", "replace")) and (
        m.group("secret").lower().decode("ascii", "replace") not in _NOT_VALUES
    )


def _bearer_check(m: re.Match[bytes]) -> bool:
    """A Bearer token has a digit or a symbol: `Bearer authentication` is prose."""
    return not m.group("secret").isalpha()


_Check = Callable[[re.Match[bytes]], bool]
_SECRET_WORDS = (b"pass", b"pwd", b"secret", b"token", b"key", b"credential", b"auth", b"cookie")
# Lowercase text every credential of `_TOKEN_SHAPES` contains: a line without any is skipped.
_SHAPE_MARKS = (
    b"sk-", b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_", b"glpat-", b"gldt-",
    b"glrt-", b"glptt-", b"glcbt-", b"glsoat-", b"glft-", b"xox", b"xapp-", b"akia", b"asia",
    b"agpa", b"aida", b"aroa", b"anpa", b"anva", b"aipa", b"hf_", b"aiza", b"ya29.", b"gocspx-",
    b"_live_", b"_test_", b"whsec_", b"npm_", b"pypi-", b"r8_", b"eyj",
)  # fmt: skip
# Each rule: its pattern (group `keep` is kept, group `secret` ends the match and is
# replaced), a check that decides from the match, and the lowercase marks a line must
# contain for the rule to be tried on it. None of the rules spans lines.
_RULES: tuple[tuple[str, _Check | None, tuple[bytes, ...]], ...] = (
    (rf"(?P<keep>)(?<![\w-])(?P<secret>{_TOKEN_SHAPES})(?![\w-])", None, _SHAPE_MARKS),
    (r"(?P<keep>://[^/\s:@]+:)(?P<secret>[^/\s@]+)(?=@)", None, (b"://",)),
    # query-string signatures (AWS, GCS, Azure SAS); named keys are settings below
    (
        r"(?i)(?P<keep>[?&](?:x-amz-signature|x-amz-credential|x-amz-security-token"
        r"|x-goog-signature|x-goog-credential|sig|signature)=)(?P<secret>[^&#\s\"'<>]+)",
        None,
        (b"sig", b"x-amz-", b"x-goog-"),
    ),
    (
        r"(?i)(?P<keep>\bbearer[ \t]+)(?P<secret>[A-Za-z0-9._~+/=-]{8,})",
        _bearer_check,
        (b"bearer",),
    ),
    # NAME=value, name: value, "apiKey": "value", Authorization: Basic value -- when
    # the whole name ends like a secret (looked up behind the match by the check)
    (
        r"(?i)(?P<keep>(?P<name>pass(?:wd|word|phrase)?|pwd|secret|token|key"
        r"|credentials?|auth(?:orization)?|cookie)[\"']?[ \t]*[=:][ \t]*[\"']?"
        r"(?:(?:bearer|basic|token|digest)[ \t]+)?)" + _VALUE,
        _setting_check,
        _SECRET_WORDS,
    ),
    # --name value, --name=value, '--name', 'value' (a printed command line)
    (
        r"(?P<keep>-(?<![\w-]-)-?(?P<name>[A-Za-z][\w.-]*)(?:=|[\"']?,?[ \t]+[\"']?))(?!-)"
        + _VALUE,
        _flag_check,
        _SECRET_WORDS,
    ),
)
# a private key, from its first line to its last (or to the end of the output)
_PRIVATE_KEY = (
    rf"(?P<keep>)(?P<secret>{_PRIVATE_KEY_BEGIN}.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z))"
)


@cache
def _compiled_rules() -> list[tuple[re.Pattern[bytes], _Check | None, tuple[bytes, ...], bool]]:
    """The rules compiled (on first use: most processes that import gitxp store no output);
    a case-blind rule (`(?i)`) is compiled to match lowercased text, which is faster."""
    rules = []
    for src, check, marks in _RULES:
        blind = src.startswith("(?i)")
        rules.append((re.compile(src.removeprefix("(?i)").encode()), check, marks, blind))
    return rules


@cache
def _private_key() -> re.Pattern[bytes]:
    return re.compile(_PRIVATE_KEY.encode(), re.DOTALL)


def _lines_with(low: bytes, marks: tuple[bytes, ...]) -> list[tuple[int, int]]:
    """The (start, end) of every line of *low* that contains one of *marks*, in order."""
    spans: dict[int, int] = {}
    for mark in marks:
        i = low.find(mark)
        while i >= 0:
            start = low.rfind(b"\n", 0, i) + 1
            end = low.find(b"\n", i)
            end = len(low) if end < 0 else end
            spans[start] = end
            i = low.find(mark, end)
    return sorted(spans.items())


def _scan(data: bytes, found: list[bytes] | None) -> tuple[bytes, int]:
    """*data* with every rule applied; the secrets replaced go to *found* when given.

    Each rule runs only over the lines holding one of its marks (found with
    `bytes.find`, far faster than a regex over all the output), joined; the
    case-blind rules match the lowercased lines (a case-blind regex is slow).
    """
    count = 0
    redacted = REDACTED.encode()
    if b"PRIVATE KEY" in data:
        blocks = [m.group("secret") for m in _private_key().finditer(data)]
        if blocks:
            data = _private_key().sub(redacted, data)
            count += len(blocks)
            if found is not None:
                found += blocks
    low = data.lower()
    for pattern, check, marks, blind in _compiled_rules():
        spans = _lines_with(low, marks)
        if not spans:
            continue
        text = b"\n".join(data[s:e] for s, e in spans)
        seen = b"\n".join(low[s:e] for s, e in spans) if blind else text
        pieces: list[bytes] = []
        pos = 0
        for m in pattern.finditer(seen):
            if check is not None and not check(m):
                continue
            start, end = m.span("secret")
            pieces += (text[pos:start], redacted)
            pos = end
            if found is not None:
                found.append(text[start:end])
        if not pieces:
            continue
        count += len(pieces) // 2
        pieces.append(text[pos:])
        parts: list[bytes] = []
        pos = 0
        for (start, end), line in zip(spans, b"".join(pieces).split(b"\n"), strict=True):
            parts += (data[pos:start], line)
            pos = end
        parts.append(data[pos:])
        data = b"".join(parts)
        low = data.lower()
    return data, count


def find_secrets(text: str) -> list[str]:
    """The secret-looking substrings of *text* (token shapes, URL passwords, query-string
    credentials, Bearer tokens, values of secret-named settings and flags)."""
    return _redact_text(text)[1]


def _redact_text(text: str) -> tuple[str, list[str]]:
    """*text* with the free-text rules applied, and the secrets it replaced."""
    found: list[bytes] = []
    data, _ = _scan(text.encode("utf-8", "surrogateescape"), found)
    if not found:
        return text, []
    return _text(data), [_text(f) for f in found]


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


# --- the command line ----------------------------------------------------------------


def _words_of_secret(value: str) -> list[str]:
    """*value* and, when it has several words (`Bearer abc...`), its long words."""
    out = [value]
    words = value.split()
    if len(words) > 1:
        out += [w for w in words if len(w) >= MIN_KNOWN_SECRET and w.lower() != "bearer"]
    return out


def _argv_secrets(argv: list[str], depth: int = 0) -> list[tuple[str, list[str]]]:
    """For each argument, it as recorded and the secret values taken out of it."""
    out: list[tuple[str, list[str]]] = []
    secret_flag_before = False
    for arg in argv:
        new, found = arg, []
        flag, eq, value = arg.partition("=")
        is_flag = arg.startswith("-") and len(arg) > 1
        if secret_flag_before and not is_flag:
            new, found = REDACTED, [arg]
        elif is_flag and eq and value and secret_name(flag.lstrip("-")):
            new, found = f"{flag}={REDACTED}", [value]
        elif not is_flag and eq and value and _ASSIGNMENT.match(flag) and secret_name(flag):
            new, found = f"{flag}={REDACTED}", [value]  # AWS_SECRET_ACCESS_KEY=..., db.password=...
        elif _SECRET_ARG.search(value if is_flag and eq else arg):
            new = f"{flag}={REDACTED}" if is_flag and eq else REDACTED
            found = [value if is_flag and eq else arg]
        else:
            new, found = _redact_text(arg)
            if depth < 3 and any(c.isspace() for c in arg):
                # a shell string (`sh -c "python train.py --api-key=..."`): its words too
                try:
                    words = shlex.split(arg)
                except ValueError:
                    words = arg.split()
                if len(words) > 1:
                    inner = [s for _, secrets in _argv_secrets(words, depth + 1) for s in secrets]
                    for secret in sorted(set(inner), key=len, reverse=True):
                        new = new.replace(secret, REDACTED)
                    found += inner
        secret_flag_before = is_flag and not eq and secret_name(flag.lstrip("-"))
        out.append((new, [w for s in found if s for w in _words_of_secret(s)]))
    return out


def redact_argv(argv: list[str]) -> tuple[list[str], list[int]]:
    """*argv* with secret-looking arguments replaced, and the positions replaced.

    Replaced: the value of a flag whose name says it is a secret (the next
    argument, or what follows `=`), the value of a positional `NAME=value`
    named like one, an argument shaped like a known token or private key,
    and within any argument a URL's password (`scheme://user:[redacted]@host`),
    query-string credentials, `Bearer` tokens and the secrets of a shell string.
    """
    recorded = _argv_secrets(argv)
    return [new for new, _ in recorded], [
        i for i, (new, _) in enumerate(recorded) if new != argv[i]
    ]


def argv_secrets(argv: list[str]) -> list[str]:
    """The secret values `redact_argv` takes out of *argv* (to be hidden in the output too)."""
    return [s for _, found in _argv_secrets(argv) for s in found]


def environment_secrets(environ: Mapping[str, str], allowed: Callable[[str], bool]) -> list[str]:
    """The secret values in *environ*: of allow-listed variables, those env.json redacts;
    of the others, those of variables named like a secret; and any token-shaped value."""
    out: list[str] = []
    for name, value in environ.items():
        if not value or name in ("PWD", "OLDPWD"):
            continue
        found = find_secrets(value)
        if (
            _SECRET_VALUE.search(value)
            or secret_name(name)
            or (allowed(name) and looks_secret_variable(name, value))
        ):
            found.append(value)
        out += found
    return out


def command_record(argv: list[str], **fields: object) -> dict[str, object]:
    """run.json's `command`: *argv* with secret-looking arguments redacted, then *fields*,
    and `redacted` (the positions replaced) when anything was."""
    recorded, redacted = redact_argv(argv)
    command: dict[str, object] = {"argv": recorded, **fields}
    if redacted:
        command["redacted"] = redacted
    return command


# --- captured output -----------------------------------------------------------------

_KEY_END = re.compile(rb"-----END [A-Z ]*PRIVATE KEY-----")


def redact_output(data: bytes, cut: bool = False, known: Iterable[str] = ()) -> tuple[bytes, int]:
    """Captured output with secret-looking text replaced, and how many replacements.

    For output.log: what a command printed goes to the terminal as it was, and
    into the run with every *known* secret (values redacted elsewhere in the
    run), token-shaped strings, private keys, URL passwords, query-string
    credentials, Bearer tokens and the values of secret-named settings and
    flags replaced by ``[redacted]``. *cut* says *data* is the tail of longer
    output, so a private key may have lost its first line: then everything up
    to a key's last line is replaced too.
    """
    count = 0
    redacted = REDACTED.encode()
    end = _KEY_END.search(data) if cut else None
    if end is not None and b"-----BEGIN " not in data[: end.start()]:
        # the rest of a key whose first line fell outside the stored tail
        data = redacted + data[end.end() :]
        count += 1
    values = {v.encode("utf-8", "surrogateescape") for v in known if len(v) >= MIN_KNOWN_SECRET}
    for value in sorted(values, key=len, reverse=True):  # longest first: no half-hidden value
        n = data.count(value)
        if n:
            data = data.replace(value, redacted)
            count += n
    data, n = _scan(data, None)
    return data, count + n
