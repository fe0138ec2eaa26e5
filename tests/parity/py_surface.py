"""Print the public surface of whichever ``e2b`` package this interpreter imports, as JSON.

Run once with the official SDK's interpreter and once with ours; ``check_parity.py`` compares the
two. Only the standard library is used, so the script runs in either environment.

What is recorded, per class: every public member (name not starting with ``_``, plus dataclass
fields) and, for callables, the parameter list (name, kind, default). E2B's dual methods
(``sbx.kill()`` and ``Sandbox.kill(sandbox_id)``) are recorded twice: ``kill`` is the instance
form, ``kill[cls]`` the class form. Exceptions also record their base classes.
"""

import dataclasses
import inspect
import json
import sys
import typing

import e2b

# Sub-objects are found through the annotations of the properties that return them, so both
# packages are read the same way whatever their module layout.
ROOTS = ["Sandbox", "AsyncSandbox"]
#: Data classes compared by field name (exported under these names by both packages).
DATA = ["SandboxInfo", "EntryInfo", "ProcessInfo", "WriteInfo", "SnapshotInfo", "CommandResult", "SandboxQuery", "FilesystemEvent", "SandboxMetrics", "PtySize", "GitStatus", "GitBranches", "GitFileStatus",
        "Template", "AsyncTemplate", "TemplateBase", "BuildInfo", "LogEntry", "LogEntryStart", "LogEntryEnd",
        "TemplateBuildStatusResponse", "BuildStatusReason", "TemplateTag", "TemplateTagInfo", "ReadyCmd",
        "Secret", "AsyncSecret", "SecretInfo", "SecretPaginator", "AsyncSecretPaginator",
        "Volume", "AsyncVolume", "VolumeInfo", "VolumeAndToken", "VolumeEntryStat"]
VIA_PROPERTY = {"commands": "Commands", "files": "Filesystem", "pty": "Pty", "git": "Git"}
VIA_RETURN = {
    ("Commands", "connect"): "CommandHandle",
    ("Filesystem", "watch_dir"): "WatchHandle",
    # The template builder's chain (not exported by name in either package).
    ("TemplateBase", "from_image"): "TemplateBuilder",
}


def _param(p: inspect.Parameter) -> list:
    default = None if p.default is inspect.Parameter.empty else repr(p.default)
    return [p.name, p.kind.name, default]


def _signature(fn: typing.Any, drop_first: bool) -> typing.Optional[list]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    if drop_first and params and params[0].name in ("self", "cls"):
        params = params[1:]
    return [_param(p) for p in params]


def _hints(fn: typing.Any) -> dict:
    try:
        return typing.get_type_hints(fn)
    except Exception:
        return getattr(fn, "__annotations__", {}) or {}


def _unwrap(tp: typing.Any) -> typing.Any:
    """The class inside ``Optional[X]`` / ``Union[X, ...]`` / ``X[T]``."""
    if inspect.isclass(tp):
        return tp
    origin = getattr(tp, "__origin__", None)
    if inspect.isclass(origin):
        return origin
    for arg in getattr(tp, "__args__", ()) or ():
        c = _unwrap(arg)
        if c is not None and c is not type(None):
            return c
    return None


def members(cls: type) -> dict:
    out: dict = {}
    seen = set()
    for klass in cls.__mro__:
        if klass is object or klass.__module__ == "builtins":
            continue
        for name, raw in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            variant = getattr(raw, "class_method_name", None) or getattr(raw, "cls_method_name", None)
            if variant and hasattr(raw, "method"):
                out[name] = {"kind": "method", "params": _signature(raw.method, True)}
                out[name + "[cls]"] = {"kind": "method", "params": _signature(getattr(cls, variant), False)}
            elif isinstance(raw, property):
                out[name] = {"kind": "property"}
            elif isinstance(raw, (staticmethod, classmethod)):
                out[name] = {"kind": "method", "params": _signature(getattr(cls, name), False)}
            elif inspect.isfunction(raw):
                out[name] = {"kind": "method", "params": _signature(raw, True)}
            elif callable(raw) and not inspect.isclass(raw):
                # Native (PyO3) methods and other descriptors.
                out[name] = {"kind": "method", "params": _signature(getattr(cls, name), True)}
            else:
                out[name] = {"kind": "attribute"}
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            out.setdefault(f.name, {"kind": "attribute"})
    for name in getattr(cls, "__annotations__", {}):
        if not name.startswith("_"):
            out.setdefault(name, {"kind": "attribute"})
    return out


def main() -> None:
    classes: dict = {}
    pending = [(name, getattr(e2b, name, None)) for name in ROOTS + DATA]
    while pending:
        label, cls = pending.pop()
        if label in classes:
            continue
        if not inspect.isclass(cls):
            classes[label] = None
            continue
        classes[label] = members(cls)
        prefix = "Async" if label.startswith("Async") else ""
        for prop, sub in VIA_PROPERTY.items():
            raw = next((vars(k)[prop] for k in cls.__mro__ if prop in vars(k)), None)
            if isinstance(raw, property) and raw.fget is not None:
                pending.append((prefix + sub, _unwrap(_hints(raw.fget).get("return"))))
            elif label in ROOTS:
                pending.append((prefix + sub, None))
        for (owner, meth), sub in VIA_RETURN.items():
            if label.removeprefix("Async") == owner:
                fn = getattr(cls, meth, None)
                ret = _unwrap(_hints(fn).get("return")) if fn is not None else None
                # Unannotated: the package's export of that name.
                pending.append((prefix + sub, ret or getattr(e2b, prefix + sub, None)))

    exceptions = {}
    exported = sorted(getattr(e2b, "__all__", None) or [n for n in dir(e2b) if not n.startswith("_")])
    for name in exported:
        obj = getattr(e2b, name, None)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            exceptions[name] = {
                "bases": [k.__name__ for k in obj.__mro__[1:] if k.__module__.split(".")[0] == "e2b"],
                "init": _signature(obj.__init__, True),
            }
    json.dump({"exports": exported, "classes": classes, "exceptions": exceptions}, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
