#!/usr/bin/python3
"""Writes pth/tiny.pth: a torch.save-format checkpoint (zip of stored entries,
protocol-2 pickle of an OrderedDict of _rebuild_tensor_v2 calls over typed
storages, as torch.save writes it) with three small tensors, one of them a
view at an offset into a shared storage. Standard library only, so the seed
can be made without torch; the tests check kino reads the values back."""
import collections, io, pickle, struct, sys, types, zipfile

def fake(module, name, obj):
    mod = sys.modules.setdefault(module, types.ModuleType(module))
    setattr(mod, name, obj)
    obj.__module__, obj.__qualname__ = module, name
    return obj

def _rebuild_tensor_v2(*args): raise RuntimeError
fake("torch._utils", "_rebuild_tensor_v2", _rebuild_tensor_v2)
FloatStorage = fake("torch", "FloatStorage", type("FloatStorage", (), {}))
BFloat16Storage = fake("torch", "BFloat16Storage", type("BFloat16Storage", (), {}))

class Storage:
    def __init__(self, key, kind, numel): self.key, self.kind, self.numel = key, kind, numel

class Tensor:
    def __init__(self, storage, offset, shape):
        self.args = (storage, offset, shape)
    def __reduce__(self):
        storage, offset, shape = self.args
        stride = tuple(int(eval("*".join(map(str, shape[i + 1:])) or "1")) for i in range(len(shape)))
        return (_rebuild_tensor_v2, (storage, offset, tuple(shape), stride, False, collections.OrderedDict()))

class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.kind, obj.key, "cpu", obj.numel)
        return None

weights = Storage("0", FloatStorage, 8)       # 0.0 .. 7.0
halves = Storage("1", BFloat16Storage, 2)     # 1.0, -2.0 in bfloat16
state = collections.OrderedDict()
state["block.weight"] = Tensor(weights, 0, (2, 3))
state["block.bias"] = Tensor(weights, 6, (2,))
state["norm.scale"] = Tensor(halves, 0, (2,))
buf = io.BytesIO()
Pickler(buf, protocol=2).dump(state)
with zipfile.ZipFile("pth/tiny.pth", "w", zipfile.ZIP_STORED) as z:
    z.writestr("tiny/data.pkl", buf.getvalue())
    z.writestr("tiny/byteorder", "little")
    z.writestr("tiny/data/0", struct.pack("<8f", *range(8)))
    z.writestr("tiny/data/1", bytes([0x80, 0x3F, 0x00, 0xC0]))
    z.writestr("tiny/version", "3\n")
