"""Foo/set (RFC 8620 §5.3): create, update with PatchObject, destroy; one transaction."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from ...store.base import Busy
from ..errors import MethodError, SetError, invalid_properties
from ..registry import Context, Response
from ..values import ID_KIND, OBJECT, STRING, IdKind, InvalidValue, Kind, ListOf, MapOf, Nullable
from .args import MISSING, request_too_large
from .datatype import REQUIRED, DataType, Record, answer, method_args

if TYPE_CHECKING:
    from ...store.base import Transaction

log = logging.getLogger("jmapd.api")

SET_ARGS = {
    "accountId": (ID_KIND, MISSING),
    "ifInState": (Nullable(STRING), None),
    "create": (Nullable(MapOf(STRING, OBJECT)), None),
    "update": (Nullable(MapOf(STRING, OBJECT)), None),
    "destroy": (Nullable(ListOf(STRING)), None),
}


def set_(ctx: Context, dt: DataType, args: dict[str, Any]) -> dict[str, Any]:
    a = method_args(ctx, dt, "set", SET_ARGS, args)
    create, update, destroy = a["create"] or {}, a["update"] or {}, a["destroy"] or []
    request_too_large(
        len(create) + len(update) + len(destroy), ctx.config.max_objects_in_set, "objects"
    )
    prepared = {
        cid: prepare(partial(dt.hooks.prepare, ctx, a["accountId"], given))
        for cid, given in create.items()
    }
    with ctx.write(a["accountId"]) as txn:
        old_state = txn.state(dt.name)
        if a["ifInState"] is not None and a["ifInState"] != str(old_state):
            raise MethodError("stateMismatch", f"the state is {old_state}, not {a['ifInState']}")
        result = apply_set(ctx, dt, txn, create, update, destroy, prepared)
        dt.hooks.finish_set(ctx, txn, result)
        new_state = txn.state(dt.name)
    return answer(dt, {
        "accountId": a["accountId"],
        "oldState": str(old_state),
        "newState": str(new_state),
        **result,
    }, "oldState", "newState")  # fmt: skip


def set_method(ctx: Context, dt: DataType, args: dict[str, Any]) -> dict[str, Any] | Response:
    """Foo/set as a method: the /set, then the calls the type makes after it (after_set)."""
    result = set_(ctx, dt, args)
    more = dt.hooks.after_set(ctx, result)
    return [(f"{dt.name}/set", result), *more] if more else result


def prepare(work: Callable[[], Any]) -> Any:
    """A create's slow work before the transaction (Hooks.prepare): its result, or the
    SetError it failed with (a bug is logged and fails only that record)."""
    try:
        return work()
    except SetError as e:
        return e
    except Busy:
        raise
    except Exception:
        log.exception("preparing one record of a /set failed")
        return SetError("serverFail", "internal error; nothing of this record was written")


@contextmanager
def one_record(txn: Transaction) -> Iterator[None]:
    """One record's create, update or destroy on its own: if it fails, what it wrote is
    undone and the others stand. A bug is logged and fails only that record."""
    try:
        with txn.savepoint():
            yield
    except (SetError, Busy):
        raise
    except Exception:
        log.exception("one record of a /set failed")
        raise SetError("serverFail", "internal error; nothing of this record was written") from None


def apply_set(
    ctx: Context,
    dt: DataType,
    txn: Transaction,
    create: dict[str, Any],
    update: dict[str, Any],
    destroy: list[str],
    prepared: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Creates (each after those it refers to), then updates, then destroys, each record on
    its own (§5.3)."""
    prepared = prepared or {}
    out: dict[str, Any] = {
        "created": {},
        "updated": {},
        "destroyed": [],
        "notCreated": {},
        "notUpdated": {},
        "notDestroyed": {},
    }
    order, cycles = creation_order(dt, create)
    for creation_id, properties in cycles.items():
        error = invalid_properties("refers to a record created in a cycle of references",
                                   *properties)  # fmt: skip
        out["notCreated"][creation_id] = error.to_json()
    for creation_id in order:
        try:
            with one_record(txn):
                out["created"][creation_id] = create_one(
                    ctx, dt, txn, create[creation_id], prepared.get(creation_id)
                )
        except SetError as e:
            out["notCreated"][creation_id] = e.to_json()
        else:
            ctx.created_ids[creation_id] = out["created"][creation_id]["id"]
    destroying = {resolve_id(ctx, id) for id in destroy}
    for key, patch in update.items():
        id = resolve_id(ctx, key)
        try:
            if id in destroying:
                raise SetError("willDestroy", "this record is destroyed in the same call")
            with one_record(txn):
                out["updated"][id] = update_one(ctx, dt, txn, id, patch)
        except SetError as e:
            out["notUpdated"][id] = e.to_json()
    for key in destroy:
        id = resolve_id(ctx, key)
        try:
            with one_record(txn):
                destroy_one(ctx, dt, txn, id)
            out["destroyed"].append(id)
        except SetError as e:
            out["notDestroyed"][id] = e.to_json()
    return {k: v or None for k, v in out.items()}


def resolve_id(ctx: Context, id: str) -> str:
    """An id, or `#creationId` replaced by the id created for it (RFC 8620 §5.3)."""
    if id.startswith("#"):
        return ctx.created_ids.get(id[1:], id)
    return id


# -- the order of creates ------------------------------------------------------------------------


def _references(kind: Kind, value: Any) -> Iterator[str]:
    """The creation ids `#x` a value refers to where its kind takes an Id."""
    if isinstance(kind, IdKind):
        if isinstance(value, str) and value.startswith("#"):
            yield value[1:]
    elif isinstance(kind, Nullable):
        yield from _references(kind.inner, value)
    elif isinstance(kind, ListOf) and isinstance(value, list):
        for item in value:
            yield from _references(kind.inner, item)
    elif isinstance(kind, MapOf) and isinstance(value, dict):
        for key, item in value.items():
            yield from _references(kind.key, key)
            yield from _references(kind.value, item)


def creation_order(dt: DataType, create: dict[str, Any]) -> tuple[list[str], dict[str, list[str]]]:
    """§5.3: a create that refers to another creation id of the same call is made after it,
    whatever the order of the map (clients in Go, Rust and Perl have none). Returns the
    creation ids in an order that honours every reference (otherwise as given), and, apart,
    those in a cycle of references with the properties that make it."""
    refers: dict[str, dict[str, set[str]]] = {}  # creation id → other creation id → properties
    for creation_id, given in create.items():
        found: dict[str, set[str]] = {}
        for name, value in given.items():
            prop = dt.property(name)
            for ref in _references(prop.kind, value) if prop is not None else ():
                if ref in create:
                    found.setdefault(ref, set()).add(name)
        refers[creation_id] = found
    order: list[str] = []
    done: set[str] = set()
    waiting = list(create)
    while waiting:
        ready = [c for c in waiting if set(refers[c]) <= done]
        if not ready:
            break
        order += ready
        done.update(ready)
        waiting = [c for c in waiting if c not in done]
    cycles = {}
    for creation_id in waiting:
        if _reaches(refers, creation_id, creation_id, set(waiting)):
            cycles[creation_id] = sorted(set().union(*refers[creation_id].values()))
    # Those that only refer to a cycle come last; their reference then finds nothing.
    return order + [c for c in waiting if c not in cycles], cycles


def _reaches(
    refers: dict[str, dict[str, set[str]]], start: str, goal: str, among: set[str]
) -> bool:
    seen: set[str] = set()
    stack = [r for r in refers[start] if r in among]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            stack += [r for r in refers[node] if r in among]
    return False


# -- create ----------------------------------------------------------------------------------------


def check_properties(
    ctx: Context,
    dt: DataType,
    record: Record,
    names: list[str],
    problems: dict[str, str] | None = None,
) -> None:
    """Check the kinds of the named properties; all bad ones, with the `problems` (name →
    reason) already found, are reported together (§5.3: the SetError lists *all*)."""
    problems = dict(problems or {})
    for name in names:
        prop = dt.property(name)
        if prop is None or name not in record:
            continue
        try:
            record[name] = prop.kind.check(record[name], ctx.resolve_creation_id)
        except InvalidValue as e:  # named by its path: name/components/1/kind
            problems["/".join((name, *e.path))] = str(e)
        except ValueError as e:
            problems[name] = str(e)
    if problems:
        description = "; ".join(f"{name} {why}" for name, why in problems.items())
        raise invalid_properties(description, *problems)


def create_one(
    ctx: Context, dt: DataType, txn: Transaction, given: dict[str, Any], prepared: Any = None
) -> Record:
    own = dt.hooks.create_record(ctx, txn, given, prepared)
    if own is not None:
        return own
    problems: dict[str, str] = {}
    if isinstance(prepared, SetError):  # what `prepare` found, told with everything else
        if prepared.type != "invalidProperties":
            raise prepared
        for name in prepared.extra.get("properties", []):
            problems[name] = str(prepared).removeprefix(f"{name} ")
    for name in given:
        prop = dt.property(name)
        if prop is None:
            problems[name] = f"is not a {dt.name} property"
        elif prop.server_set:
            problems[name] = "is set by the server"
    for p in dt.properties:
        if p.default is REQUIRED and not p.server_set and p.name not in given:
            problems[p.name] = "is required"
    record = copy.deepcopy(given)
    check_properties(ctx, dt, record, [k for k in given if k not in problems], problems)
    asked = copy.deepcopy(record)  # as given, with #references resolved
    for p in dt.properties:
        if p.name not in record and p.name != "id" and not p.absent:
            record[p.name] = p.default_value()
    dt.hooks.create(ctx, txn, record)
    id = record.pop("id", None) or txn.new_id()
    txn.put(dt.name, id, record)
    shown = {**record, "id": id}
    dt.hooks.present(ctx, txn, {id: shown})  # computed properties, as /get would show them
    # §5.3: what the server set, and what it set otherwise than asked (an expiry it bounded)
    return {k: v for k, v in shown.items() if not k.startswith("_") and k not in dt.private
            and (k not in asked or asked[k] != v)}  # fmt: skip


# -- update ----------------------------------------------------------------------------------------


def _tokens(path: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")]


def apply_patch(current: Record, patch: dict[str, Any], dt: DataType) -> Record:
    """Apply a PatchObject (§5.3) to a copy of a record as /get shows it."""
    for path in patch:
        parts = path.split("/")
        for end in range(1, len(parts)):
            prefix = "/".join(parts[:end])
            if prefix in patch:
                raise SetError("invalidPatch", f"{prefix!r} is a prefix of {path!r}")
    new = dict(current)
    for name in {_tokens(path)[0] for path in patch}:
        if name in current:
            new[name] = copy.deepcopy(current[name])
    for path, value in patch.items():
        tokens = _tokens(path)
        name = tokens[0]
        if len(tokens) == 1:
            prop = dt.property(name)
            if value is None and prop is not None and prop.absent:
                new.pop(name, None)
            else:
                new[name] = prop.default_value() if value is None and prop is not None else value
            continue
        parent = new.get(name)
        for token in tokens[1:-1]:
            if not isinstance(parent, dict) or token not in parent:
                raise SetError("invalidPatch", f"{path!r} goes through a missing object")
            parent = parent[token]
        if not isinstance(parent, dict):
            raise SetError("invalidPatch", f"{path!r} does not point into an object")
        if value is None:
            parent.pop(tokens[-1], None)
        else:
            parent[tokens[-1]] = value
    return new


def _settable(dt: DataType, name: str) -> bool:
    prop = dt.property(name)
    return prop is not None and not prop.server_set and not prop.immutable


def shown_record(
    ctx: Context, dt: DataType, txn: Transaction, stored: Record, names: set[str]
) -> tuple[Record, set[str]]:
    """The record with the named properties as /get would show them: computed ones filled in
    (Hooks.present), and those the type shows beyond its declaration (Hooks.shown); and the
    names that are no property of the type."""
    shown = {k: v for k, v in stored.items() if dt.property(k) is not None}
    if any(n in dt.by_name and n not in stored for n in names):
        dt.hooks.present(ctx, txn, {shown["id"]: shown})  # assigns, never changes in place
    others = [n for n in names if dt.property(n) is None]
    extra = dt.hooks.shown(ctx, txn, stored, others) if others else {}
    shown.update(extra)
    return shown, {n for n in others if n not in extra}


def update_one(
    ctx: Context, dt: DataType, txn: Transaction, id: str, patch: dict[str, Any]
) -> Record | None:
    """§5.3: a server-set or immutable property may be sent back with the value it has;
    only a different value (or a property the type does not have) is invalid. Every bad
    property is named in one invalidProperties error."""
    stored = txn.get(dt.name, [id]).get(id)
    if stored is None or not dt.hooks.visible(ctx, stored):
        raise SetError("notFound", f"no {dt.name} {id!r}")
    stored["id"] = id
    names = {_tokens(path)[0] for path in patch}
    current, unknown = shown_record(ctx, dt, txn, stored, names)
    problems = {n: f"is not a {dt.name} property" for n in sorted(unknown)}
    patched = apply_patch(current, {p: v for p, v in patch.items()
                                    if _tokens(p)[0] not in problems}, dt)  # fmt: skip
    new = dict(stored)
    for name in sorted(names - set(problems)):
        if _settable(dt, name):
            if name in patched:
                new[name] = patched[name]
            else:  # removed (ABSENT)
                new.pop(name, None)
        elif not dt.hooks.same(name, patched.get(name), current.get(name)):
            problems[name] = "cannot be changed"
    settable = [n for n in sorted(names) if _settable(dt, n) and n not in problems]
    check_properties(ctx, dt, new, settable, problems)
    requested = dict(new)  # hooks assign what they change (Hooks.update)
    dt.hooks.update(ctx, txn, stored, new)
    new.pop("id", None)
    stored.pop("id", None)
    if new != stored:
        txn.put(dt.name, id, new)
    # §5.3: what changed in a way the patch did not ask for, even if the patch named it.
    changed = {k: v for k, v in new.items() if requested.get(k) != v}
    return changed or None


def destroy_one(ctx: Context, dt: DataType, txn: Transaction, id: str) -> None:
    current = txn.get(dt.name, [id]).get(id)
    if current is None or not dt.hooks.visible(ctx, current):
        raise SetError("notFound", f"no {dt.name} {id!r}")
    current["id"] = id
    dt.hooks.destroy(ctx, txn, current)
    txn.destroy(dt.name, id)
