"""A module of the user's own, named on the command line as FILE.py:NAME or package.module:NAME,
and the typed inputs it takes (`--input 1x128:long`, several joined by "+")."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import CnnlabError, InputShapeError

INPUT_DTYPES = {"float32": torch.float32, "float": torch.float32, "float16": torch.float16, "half": torch.float16,
                "bfloat16": torch.bfloat16, "float64": torch.float64, "double": torch.float64, "long": torch.long,
                "int64": torch.long, "int": torch.int32, "int32": torch.int32, "bool": torch.bool}


def names_a_user_module(text: str) -> bool:
    """FILE.py:NAME or package.module:NAME (a zoo name or a checkpoint path has no such colon)."""
    return re.fullmatch(r"[^:]+(\.py|\w):[A-Za-z_]\w*", text) is not None and not Path(text).exists()


def load_user_module(spec: str) -> nn.Module:
    """The nn.Module that `spec` names: a class built without arguments, a function called without
    arguments that returns a module, or a module object."""
    where, name = spec.rsplit(":", 1)
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise CnnlabError(f"{spec}: there is no file {where}")
        module_spec = importlib.util.spec_from_file_location(f"cnnlab_user_{path.stem}", path)
        source = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = source  # dataclasses and pickling look their module up by name
        try:
            module_spec.loader.exec_module(source)
        except Exception as error:  # noqa: BLE001 - the file's own error, in one line, chained
            raise CnnlabError(f"{spec}: running {where} raised {type(error).__name__}: {error}") from error
    else:
        try:
            source = importlib.import_module(where)
        except ImportError as error:
            raise CnnlabError(f"{spec}: cannot import {where} ({error}); name a file as path/to/file.py:{name}") from None
    if not hasattr(source, name):
        found = sorted(k for k, v in vars(source).items() if _is_module_like(v) and not k.startswith("_"))
        raise CnnlabError(f"{spec}: {where} has no {name}" + (f"; its modules: {', '.join(found)}" if found else ""))
    value = getattr(source, name)
    if isinstance(value, nn.Module):
        return value
    if not callable(value):
        raise CnnlabError(f"{spec}: {name} is a {type(value).__name__}, not an nn.Module, a class or a function")
    try:
        built = value()
    except TypeError as error:
        raise CnnlabError(f"{spec}: {name}() cannot be called without arguments ({error}); name a function that "
                          "builds the module with the arguments you want") from None
    if not isinstance(built, nn.Module):
        raise CnnlabError(f"{spec}: {name}() returned a {type(built).__name__}, not an nn.Module")
    return built


def _is_module_like(value) -> bool:
    return isinstance(value, nn.Module) or (isinstance(value, type) and issubclass(value, nn.Module))


def parse_typed_inputs(text: str) -> tuple[list[tuple[int, ...]], list[torch.dtype]]:
    """'1x128:long' -> ([(1, 128)], [torch.long]); '3x32x32+5:long' -> two inputs. Shapes are one
    sample's, as written (no image shorthand); the type defaults to float32."""
    shapes, dtypes = [], []
    for part in text.split("+"):
        shape_text, _, dtype_text = part.strip().partition(":")
        if not re.fullmatch(r"\d+(x\d+)*", shape_text.strip()) or min(int(v) for v in shape_text.split("x")) < 1:
            raise InputShapeError(f"--input {text!r}: {part.strip()!r} is not a shape such as 1x128 or 3x32x32:float32 "
                                  "(positive sizes joined by x, an optional :type, inputs joined by +)")
        dtype = INPUT_DTYPES.get((dtype_text or "float32").strip())
        if dtype is None:
            raise InputShapeError(f"--input {text!r}: unknown type {dtype_text!r}; choose one of {', '.join(INPUT_DTYPES)}")
        shapes.append(tuple(int(v) for v in shape_text.split("x")))
        dtypes.append(dtype)
    return shapes, dtypes
