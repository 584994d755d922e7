"""Keys and the server's authorization: one nkey per user, a registry, the rendered config.

`dtf auth init --dir D` writes one seed file per role (`submitter.nk`, `worker.nk`, ...,
mode 0600), `users.json` (name, role and public key of each user: no secrets) and
`nats-auth.conf`, the authorization block `dtf server --auth D` gives nats-server.  `add`
and `revoke` change the registry and render the block again; a running `dtf server` sees
the file change and reloads the server (SIGHUP), so a revoked key is refused at once.

A seed is a secret: it is read only from a file that no one but its owner may read (or from
$DTF_CREDS naming such a file), never from the command line.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import nkeys

from dtf.core.roles import ROLES, permissions
from dtf.errors import ConfigError
from events.subjects import valid_token

REGISTRY = "users.json"
CONF = "nats-auth.conf"
KEY_SUFFIX = ".nk"


@dataclass(frozen=True)
class User:
    name: str
    role: str
    public_key: str
    # A revoked key stays listed: the events it signed before still verify (`dtf.nats.signing`).
    revoked: bool = False


def new_seed() -> bytes:
    """A fresh user seed ('SU...'), from the system's random source."""
    return nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)


def public_key(seed: bytes) -> str:
    """The public key ('U...') of a seed; ConfigError when it is not one."""
    try:
        return nkeys.from_seed(bytearray(seed)).public_key.decode()
    except (nkeys.NkeysError, ValueError, TypeError) as exc:
        raise ConfigError(f"not an nkey seed ({type(exc).__name__})") from None


def read_seed(path: Path) -> bytes:
    """The seed in `path`, refused when group or others may read the file."""
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{path} may be read by others (mode {stat.S_IMODE(mode):o}); a key file must "
                f"be private: chmod 600 {path}"
            )
        seed = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    public_key(seed)  # refuse what is not a seed here, not as a failed connection later
    return seed


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data + b"\n")


def load_users(directory: Path) -> list[User]:
    path = directory / REGISTRY
    try:
        rows = json.loads(path.read_text())
        return [User(**row) for row in rows]
    except FileNotFoundError:
        raise ConfigError(
            f"{directory} holds no dtf keys (create them: dtf auth init --dir {directory})"
        ) from None
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def _save(directory: Path, users: list[User]) -> None:
    """Write the registry and the server's block, each replaced atomically."""
    for name, text in (
        (REGISTRY, json.dumps([asdict(u) for u in users], indent=2) + "\n"),
        (CONF, render(users)),
    ):
        tmp = directory / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, directory / name)


def init(directory: Path) -> list[Path]:
    """One key per role, named for it; refuses a directory that already has keys."""
    if (directory / REGISTRY).exists():
        raise ConfigError(f"{directory} already holds dtf keys (add one: dtf auth add ROLE NAME)")
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    users: list[User] = []
    written = []
    for role in ROLES:
        path, user = _new_key(directory, role, role)
        users.append(user)
        written.append(path)
    _save(directory, users)
    return written


def add(directory: Path, role: str, name: str) -> Path:
    """A key for one more user of `role` (a worker key is for the worker with id `name`)."""
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    users = load_users(directory)
    if any(u.name == name and not u.revoked for u in users):
        raise ConfigError(f"a key named {name!r} exists already (dtf auth revoke {name} first)")
    path, user = _new_key(directory, role, name)
    _save(directory, [*users, user])
    return path


def revoke(directory: Path, name: str) -> User:
    """Take user `name` off the server's users and delete its key file; the registry keeps
    its public key, marked revoked, so that what it signed before can still be verified."""
    users = load_users(directory)
    gone = [u for u in users if u.name == name and not u.revoked]
    if not gone:
        known = ", ".join(u.name for u in users if not u.revoked)
        raise ConfigError(f"no key named {name!r} (known: {known})")
    _save(directory, [replace(u, revoked=True) if u in gone else u for u in users])
    (directory / f"{name}{KEY_SUFFIX}").unlink(missing_ok=True)
    return gone[0]


def _new_key(directory: Path, role: str, name: str) -> tuple[Path, User]:
    if not valid_token(name):
        raise ConfigError(f"a key name is letters, digits, '-' and '_' (got {name!r})")
    seed = new_seed()
    path = directory / f"{name}{KEY_SUFFIX}"
    try:
        _write_private(path, seed)
    except FileExistsError:
        raise ConfigError(f"{path} exists already; not overwriting a key") from None
    return path, User(name, role, public_key(seed))


def render(users: list[User]) -> str:
    """nats-server's authorization block for `users` (each an nkey with its permissions)."""
    lines = [
        "# Written by `dtf auth`; change it with `dtf auth add` and `dtf auth revoke`.",
        "authorization {",
        "  users = [",
    ]
    for user in (u for u in users if not u.revoked):
        perms = permissions(user.role, user.name)
        lines += [
            f"    # {user.name} ({user.role})",
            f"    {{ nkey: {json.dumps(user.public_key)}, permissions: {{",
            f"        publish: {{ allow: {json.dumps(list(perms.publish))} }},",
            f"        subscribe: {{ allow: {json.dumps(list(perms.subscribe))} }},",
            f"        allow_responses: {'true' if perms.responds else 'false'} }} }},",
        ]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)
