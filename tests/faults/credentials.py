"""A corpus of credential shapes, and of ordinary text that must not be taken for one.

Every value is built here from a seeded generator (no real credential, and
nothing a secret scanner would flag in this file), and every value is unique,
so that a leak names the shape and the placement that leaked.
"""

from __future__ import annotations

import random
import string

_rng = random.Random(20260516)
_ALNUM = string.ascii_letters + string.digits


def _s(n: int, alphabet: str = _ALNUM) -> str:
    """*n* random characters with at least one digit (real tokens have digits)."""
    body = "".join(_rng.choice(alphabet) for _ in range(n - 1))
    return body + _rng.choice(string.digits)


def _pem() -> str:
    body = "\n".join(_s(64, _ALNUM + "+/") for _ in range(4))
    kind = "RSA " if _rng.random() < 0.5 else ""
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


# One maker per credential shape; each call makes a new, unique value.
SHAPES = {
    "aws_key_id": lambda: "AKIA" + _s(16, string.ascii_uppercase + string.digits),
    "aws_session_id": lambda: "ASIA" + _s(16, string.ascii_uppercase + string.digits),
    "aws_secret": lambda: _s(40, _ALNUM + "/+"),
    "github": lambda: "gh" + "p_" + _s(36),
    "github_oauth": lambda: "gh" + "o_" + _s(36),
    "github_pat": lambda: "github" + "_pat_" + _s(22) + "_" + _s(59),
    "gitlab": lambda: "gl" + "pat-" + _s(20),
    "huggingface": lambda: "h" + "f_" + _s(34),
    "openai": lambda: "s" + "k-proj-" + _s(48),
    "anthropic": lambda: "s" + "k-ant-api03-" + _s(80, _ALNUM + "-_"),
    "slack": lambda: "xo" + "xb-" + _s(12, string.digits) + "-" + _s(24),
    "stripe": lambda: "s" + "k_live_" + _s(24),
    "google": lambda: "AI" + "za" + _s(35, _ALNUM + "-_"),
    "jwt": lambda: "ey" + "J" + _s(20) + ".ey" + "J" + _s(30) + "." + _s(43, _ALNUM + "-_"),
    "wandb": lambda: _s(40, "0123456789abcdef"),
    "password": lambda: "Pw-" + _s(14, _ALNUM + "!#%"),
    "private_key": _pem,
}


def make(shape: str) -> str:
    return SHAPES[shape]()


# Ordinary training output that must come out of redaction exactly as it went in.
ORDINARY_OUTPUT = [
    "BertTokenizerFast(special_tokens={'unk_token': '[UNK]', 'sep_token': '[SEP]', "
    "'pad_token': '[PAD]', 'cls_token': '[CLS]', 'mask_token': '[MASK]'})",
    "eos_token=</s> bos_token: <s> pad_token: <pad> unk_token=<unk>",
    "Using eos_token, but it is not set yet.",
    "commit 3f2a9c1e0b8d7f6a5e4d3c2b1a0f9e8d7c6b5a49 (HEAD -> main)",
    "run id 123e4567-e89b-12d3-a456-426614174000 started",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "epoch 3: loss=0.2514 acc=0.9132 lr=3e-4 grad_norm: 1.25",
    "Saving model checkpoint to /home/ada/proj/outputs/checkpoint-500/pytorch_model.bin",
    "max_tokens=512 num_tokens: 77 tokenizer: bert tokens/s 12000",
    "sort_key: val_loss monitor_key=val_acc",
    "see https://huggingface.co/bert-base-uncased and git@github.com:ada/proj.git",
    "PWD=/home/ada/proj OLDPWD=/home/ada",
    "--max-tokens 512 --tokenizer bert --author ada --output-dir ./out",
    "Bearer authentication is configured",
    "{'key': 'loss', 'value': 0.25}",
    "password: ****",
    "-----BEGIN PUBLIC KEY-----",
]
ORDINARY_ARGV = [
    ["--max-tokens", "512", "--tokenizer", "bert", "--author", "ada"],
    ["--pad-token", "[PAD]", "--eos-token", "</s>", "--sort-key", "val_loss"],
    ["--no-auth", "train.py", "--use-auth-token", "--lr", "0.1"],
    ["model.max_tokens=512", "trainer.precision=16", "data.path=/data/x"],
    ["--resume", "3f2a9c1e0b8d7f6a5e4d3c2b1a0f9e8d7c6b5a49"],
    ["--run-id", "123e4567-e89b-12d3-a456-426614174000"],
    ["sh", "-c", "python train.py --lr 0.1 --epochs 3"],
]
