// PyTorch `torch.save` checkpoints (`.pth`), as the official Wan release
// ships its T5 and VAE: a zip archive of stored (uncompressed) entries,
// zip64 for large files, holding `<dir>/data.pkl` (the pickled state dict)
// and `<dir>/data/<key>` (the raw little-endian bytes of each storage).
//
// The pickle is run by a small machine that knows only what a state dict
// holds: containers, strings, numbers, and four callables (OrderedDict,
// torch._utils._rebuild_tensor_v2 / _rebuild_parameter(_with_state), and the
// typed storages of persistent ids). Any other callable is refused, so a
// malicious file cannot run code: the promise of safetensors, kept for .pth.
// Every length, offset and index read from the file is checked before use.
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "kino/error.h"
#include "loading/tensor_file.h"

namespace kino {

namespace {

uint64_t le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct ZipEntry {
  uint64_t offset = 0;  // of the data, from the start of the file
  uint64_t size = 0;
};

// The zip's central directory: name -> stored data. Zip64 records are
// followed where a 32-bit field holds its 0xFFFFFFFF escape.
std::map<std::string, ZipEntry> read_zip(const std::string& path, const FileBytes& file) {
  const uint8_t* d = file.data();
  const uint64_t n = file.size();
  auto fail = [&](const std::string& what) { return Error(concat(path, ": ", what)); };
  auto in_file = [&](uint64_t off, uint64_t len) { return off <= n && len <= n - off; };

  // End of central directory: 22 bytes + a comment of at most 65535.
  if (n < 22) throw fail("truncated zip (no end of central directory)");
  uint64_t eocd = n;
  for (uint64_t p = n - 22 + 1; p-- > 0 && n - p <= 22 + 65535;) {
    if (le(d + p, 4) == 0x06054b50) {
      eocd = p;
      break;
    }
  }
  if (eocd == n) throw fail("not a zip archive (no end of central directory record)");
  uint64_t count = le(d + eocd + 10, 2), cd_size = le(d + eocd + 12, 4), cd_offset = le(d + eocd + 16, 4);
  if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    if (eocd < 20 || le(d + eocd - 20, 4) != 0x07064b50) throw fail("zip64 end of central directory locator missing");
    const uint64_t rec = le(d + eocd - 20 + 8, 8);
    if (!in_file(rec, 56) || le(d + rec, 4) != 0x06064b50) throw fail("zip64 end of central directory record out of the file");
    count = le(d + rec + 32, 8);
    cd_size = le(d + rec + 40, 8);
    cd_offset = le(d + rec + 48, 8);
  }
  if (!in_file(cd_offset, cd_size)) throw fail(concat("central directory [", cd_offset, ", +", cd_size, ") outside the file"));
  if (count > cd_size / 46) throw fail(concat("central directory too small for ", count, " entries"));

  std::map<std::string, ZipEntry> entries;
  uint64_t p = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    if (cd_end - p < 46 || le(d + p, 4) != 0x02014b50) throw fail(concat("bad central directory entry ", i));
    const uint64_t method = le(d + p + 10, 2), name_len = le(d + p + 28, 2), extra_len = le(d + p + 30, 2),
                   comment_len = le(d + p + 32, 2);
    uint64_t csize = le(d + p + 20, 4), usize = le(d + p + 24, 4), local = le(d + p + 42, 4);
    if (cd_end - p - 46 < name_len + extra_len + comment_len) throw fail(concat("central directory entry ", i, " overruns"));
    const std::string name(reinterpret_cast<const char*>(d + p + 46), name_len);
    // Zip64 extra field (id 1): the 64-bit values of the escaped fields, in order.
    for (uint64_t e = p + 46 + name_len, e_end = e + extra_len; e + 4 <= e_end;) {
      const uint64_t id = le(d + e, 2), len = le(d + e + 2, 2);
      if (len > e_end - e - 4) throw fail(concat("zip entry '", name, "': bad extra field"));
      if (id == 1) {
        uint64_t q = e + 4;
        for (uint64_t* field : {&usize, &csize, &local}) {
          if (*field != 0xFFFFFFFF) continue;
          if (q + 8 > e + 4 + len) throw fail(concat("zip entry '", name, "': short zip64 field"));
          *field = le(d + q, 8);
          q += 8;
        }
      }
      e += 4 + len;
    }
    if (method != 0 || csize != usize)
      throw fail(concat("zip entry '", name, "' is compressed (method ", method, "); torch.save writes stored entries"));
    if (!in_file(local, 30) || le(d + local, 4) != 0x04034b50) throw fail(concat("zip entry '", name, "': bad local header"));
    const uint64_t data = local + 30 + le(d + local + 26, 2) + le(d + local + 28, 2);
    if (!in_file(data, usize)) throw fail(concat("zip entry '", name, "' (", usize, " bytes) extends past the end of the file"));
    entries[name] = {data, usize};
    p += 46 + name_len + extra_len + comment_len;
  }
  return entries;
}

// A pickled value. Values live in the machine's arena and refer to each
// other by pointer, so reference cycles a hostile pickle builds cost nothing.
struct Value {
  enum class Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Storage, Tensor } kind = Kind::None;
  int64_t i = 0;
  double f = 0;
  std::string s;                                  // String; Global "module.name"; Storage key
  std::vector<Value*> items;                      // Tuple, List
  std::vector<std::pair<Value*, Value*>> dict;    // Dict (insertion order)
  DType dtype = DType::F32;                       // Storage
  Value* storage = nullptr;                       // Tensor
  std::vector<int64_t> shape, stride;             // Tensor
};

const char* kind_name(Value::Kind k) {
  static const char* names[] = {"None", "bool", "int", "float", "str", "tuple", "list", "dict", "global", "storage", "tensor"};
  return names[static_cast<int>(k)];
}

std::optional<DType> storage_dtype(const std::string& global) {
  static const std::pair<const char*, DType> table[] = {
      {"torch.FloatStorage", DType::F32}, {"torch.DoubleStorage", DType::F64}, {"torch.HalfStorage", DType::F16},
      {"torch.BFloat16Storage", DType::BF16}, {"torch.LongStorage", DType::I64}, {"torch.IntStorage", DType::I32},
      {"torch.ShortStorage", DType::I16}, {"torch.CharStorage", DType::I8}, {"torch.ByteStorage", DType::U8},
      {"torch.BoolStorage", DType::BOOL}, {"torch.Float8_e4m3fnStorage", DType::F8_E4M3},
      {"torch.Float8_e5m2Storage", DType::F8_E5M2}};
  for (const auto& [name, dtype] : table)
    if (global == name) return dtype;
  return std::nullopt;
}

class Unpickler {
 public:
  Unpickler(const std::string& where, const uint8_t* data, size_t size) : where_(where), p_(data), end_(data + size) {}

  Value* run() {
    while (true) {
      if (p_ >= end_) throw fail("ends without STOP");
      const uint8_t op = *p_++;
      switch (op) {
        case 0x80: take(1); break;                                  // PROTO
        case 0x95: take(8); break;                                  // FRAME
        case '(': marks_.push_back(stack_.size()); break;           // MARK
        case ')': push(make(Value::Kind::Tuple)); break;            // EMPTY_TUPLE
        case ']': push(make(Value::Kind::List)); break;             // EMPTY_LIST
        case '}': push(make(Value::Kind::Dict)); break;             // EMPTY_DICT
        case 'N': push(make(Value::Kind::None)); break;             // NONE
        case 0x88: push(integer(1, Value::Kind::Bool)); break;      // NEWTRUE
        case 0x89: push(integer(0, Value::Kind::Bool)); break;      // NEWFALSE
        case 'K': push(integer(static_cast<int64_t>(le(take(1), 1)))); break;  // BININT1
        case 'M': push(integer(static_cast<int64_t>(le(take(2), 2)))); break;  // BININT2
        case 'J': push(integer(static_cast<int32_t>(le(take(4), 4)))); break;  // BININT
        case 0x8a: {                                                 // LONG1
          const size_t len = le(take(1), 1);
          if (len > 8) throw fail("integer wider than 64 bits");
          uint64_t v = len ? le(take(len), static_cast<int>(len)) : 0;
          if (len && len < 8 && (v >> (8 * len - 1)) & 1) v |= ~0ull << (8 * len);  // sign-extend
          push(integer(static_cast<int64_t>(v)));
          break;
        }
        case 'G': {                                                  // BINFLOAT (big-endian)
          const uint8_t* b = take(8);
          uint64_t bits = 0;
          for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[i];
          Value* v = make(Value::Kind::Float);
          std::memcpy(&v->f, &bits, 8);
          push(v);
          break;
        }
        case 'X': push(string(le(take(4), 4))); break;              // BINUNICODE
        case 0x8c: push(string(le(take(1), 1))); break;             // SHORT_BINUNICODE
        case 0x8d: push(string(le(take(8), 8))); break;             // BINUNICODE8
        case 'T': push(string(le(take(4), 4))); break;              // BINSTRING
        case 'U': push(string(le(take(1), 1))); break;              // SHORT_BINSTRING
        case 'B': push(string(le(take(4), 4))); break;              // BINBYTES
        case 'C': push(string(le(take(1), 1))); break;              // SHORT_BINBYTES
        case 'c': {                                                  // GLOBAL "module\nname\n"
          std::string module = line(), name = line();
          push(global(module + "." + name));
          break;
        }
        case 0x93: {                                                 // STACK_GLOBAL
          Value* name = pop(Value::Kind::String);
          Value* module = pop(Value::Kind::String);
          push(global(module->s + "." + name->s));
          break;
        }
        case 'q': memo(le(take(1), 1)) = top(); break;              // BINPUT
        case 'r': memo(le(take(4), 4)) = top(); break;              // LONG_BINPUT
        case 0x94: memo(memo_.size()) = top(); break;               // MEMOIZE
        case 'h': push(get(le(take(1), 1))); break;                 // BINGET
        case 'j': push(get(le(take(4), 4))); break;                 // LONG_BINGET
        case 't': {                                                  // TUPLE
          Value* t = make(Value::Kind::Tuple);
          t->items = pop_to_mark();
          push(t);
          break;
        }
        case 0x85: case 0x86: case 0x87: {                           // TUPLE1..3
          Value* t = make(Value::Kind::Tuple);
          t->items.resize(op - 0x84);
          for (size_t k = t->items.size(); k-- > 0;) t->items[k] = pop();
          push(t);
          break;
        }
        case 'l': {                                                  // LIST
          Value* l = make(Value::Kind::List);
          l->items = pop_to_mark();
          push(l);
          break;
        }
        case 'a': {                                                  // APPEND
          Value* v = pop();
          top(Value::Kind::List)->items.push_back(v);
          break;
        }
        case 'e': {                                                  // APPENDS
          std::vector<Value*> vs = pop_to_mark();
          auto& items = top(Value::Kind::List)->items;
          items.insert(items.end(), vs.begin(), vs.end());
          break;
        }
        case 'd': {                                                  // DICT
          std::vector<Value*> kv = pop_to_mark();
          push(dict_of(kv));
          break;
        }
        case 's': {                                                  // SETITEM
          Value* v = pop();
          Value* k = pop();
          top(Value::Kind::Dict)->dict.emplace_back(k, v);
          break;
        }
        case 'u': {                                                  // SETITEMS
          std::vector<Value*> kv = pop_to_mark();
          Value* d = top(Value::Kind::Dict);
          Value* extra = dict_of(kv);
          d->dict.insert(d->dict.end(), extra->dict.begin(), extra->dict.end());
          break;
        }
        case 'b': pop(); top(); break;                               // BUILD: state of an OrderedDict/Parameter, unused
        case 'Q': push(persistent(pop(Value::Kind::Tuple))); break;  // BINPERSID
        case 'R': {                                                  // REDUCE
          Value* args = pop(Value::Kind::Tuple);
          Value* callable = pop(Value::Kind::Global);
          push(reduce(callable->s, args->items));
          break;
        }
        case '.': return pop();                                      // STOP
        default:
          throw fail(concat("unsupported pickle opcode 0x", "0123456789abcdef"[op >> 4], "0123456789abcdef"[op & 15]));
      }
    }
  }

 private:
  Error fail(const std::string& what) const {
    return Error(concat(where_, ": ", what, " (data.pkl byte ", p_ - begin(), ")"));
  }
  const uint8_t* begin() const { return end_ - size_; }

  const uint8_t* take(uint64_t n) {
    if (n > static_cast<uint64_t>(end_ - p_)) throw fail(concat("truncated: needs ", n, " more bytes"));
    const uint8_t* at = p_;
    p_ += n;
    return at;
  }
  std::string line() {
    const uint8_t* nl = static_cast<const uint8_t*>(std::memchr(p_, '\n', static_cast<size_t>(end_ - p_)));
    if (!nl) throw fail("unterminated GLOBAL name");
    std::string s(reinterpret_cast<const char*>(p_), static_cast<size_t>(nl - p_));
    p_ = nl + 1;
    return s;
  }

  Value* make(Value::Kind kind) {
    // A state dict makes about ten values per tensor (a few thousand for
    // any released model); a pickle of one-byte opcodes would make one per
    // byte, ~200 bytes of memory each: bounded before it costs gigabytes.
    constexpr size_t kMaxValues = size_t{1} << 21;
    if (arena_.size() >= kMaxValues)
      throw fail(concat("makes more than ", kMaxValues, " values (a state dict of a released model makes a few thousand)"));
    arena_.push_back(std::make_unique<Value>());
    arena_.back()->kind = kind;
    return arena_.back().get();
  }
  Value* integer(int64_t v, Value::Kind kind = Value::Kind::Int) {
    Value* x = make(kind);
    x->i = v;
    return x;
  }
  Value* string(uint64_t len) {
    const uint8_t* b = take(len);
    Value* v = make(Value::Kind::String);
    v->s.assign(reinterpret_cast<const char*>(b), static_cast<size_t>(len));
    return v;
  }
  Value* global(const std::string& name) {
    Value* v = make(Value::Kind::Global);
    v->s = name;
    return v;
  }
  Value* dict_of(const std::vector<Value*>& kv) {
    if (kv.size() % 2) throw fail("odd number of items for a dict");
    Value* d = make(Value::Kind::Dict);
    for (size_t k = 0; k < kv.size(); k += 2) d->dict.emplace_back(kv[k], kv[k + 1]);
    return d;
  }

  void push(Value* v) { stack_.push_back(v); }
  Value* top(std::optional<Value::Kind> kind = std::nullopt) {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) throw fail("stack underflow");
    if (kind && stack_.back()->kind != *kind)
      throw fail(concat("expected a ", kind_name(*kind), ", found a ", kind_name(stack_.back()->kind)));
    return stack_.back();
  }
  Value* pop(std::optional<Value::Kind> kind = std::nullopt) {
    Value* v = top(kind);
    stack_.pop_back();
    return v;
  }
  std::vector<Value*> pop_to_mark() {
    if (marks_.empty()) throw fail("no MARK on the stack");
    std::vector<Value*> out(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return out;
  }
  Value*& memo(uint64_t index) {
    if (index > arena_.size()) throw fail(concat("memo index ", index, " out of range"));  // every memo entry is a made value
    if (index >= memo_.size()) memo_.resize(index + 1, nullptr);
    return memo_[index];
  }
  Value* get(uint64_t index) {
    if (index >= memo_.size() || !memo_[index]) throw fail(concat("memo index ", index, " was never stored"));
    return memo_[index];
  }

  static std::vector<int64_t> ints(const Value* tuple, const char* what, const Unpickler& u) {
    if (tuple->kind != Value::Kind::Tuple) throw u.fail(concat("tensor ", what, " is not a tuple"));
    std::vector<int64_t> out;
    for (const Value* v : tuple->items) {
      if (v->kind != Value::Kind::Int) throw u.fail(concat("tensor ", what, " holds a ", kind_name(v->kind)));
      out.push_back(v->i);
    }
    return out;
  }

  // ('storage', torch.<T>Storage, key, location, numel)
  Value* persistent(const Value* pid) {
    const auto& it = pid->items;
    if (it.size() != 5 || it[0]->kind != Value::Kind::String || it[0]->s != "storage" || it[1]->kind != Value::Kind::Global ||
        it[2]->kind != Value::Kind::String)
      throw fail("persistent id is not ('storage', type, key, location, numel)");
    const std::optional<DType> dtype = storage_dtype(it[1]->s);
    if (!dtype) throw fail(concat("unsupported storage type ", it[1]->s));
    Value* s = make(Value::Kind::Storage);
    s->dtype = *dtype;
    s->s = it[2]->s;
    return s;
  }

  Value* reduce(const std::string& callable, const std::vector<Value*>& args) {
    if (callable == "collections.OrderedDict") {
      if (!args.empty()) throw fail("OrderedDict with arguments");
      return make(Value::Kind::Dict);
    }
    if (callable == "torch._utils._rebuild_tensor_v2") {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (args.size() < 4 || args[0]->kind != Value::Kind::Storage || args[1]->kind != Value::Kind::Int)
        throw fail("_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, ...)");
      Value* t = make(Value::Kind::Tensor);
      t->storage = args[0];
      t->i = args[1]->i;
      t->shape = ints(args[2], "size", *this);
      t->stride = ints(args[3], "stride", *this);
      return t;
    }
    if (callable == "torch._utils._rebuild_parameter" || callable == "torch._utils._rebuild_parameter_with_state") {
      if (args.empty() || args[0]->kind != Value::Kind::Tensor) throw fail("_rebuild_parameter of something not a tensor");
      return args[0];
    }
    throw fail(concat("refusing to call ", callable, " (only state dicts of tensors are loaded)"));
  }

  std::string where_;
  const uint8_t* p_;
  const uint8_t* end_;
  size_t size_ = static_cast<size_t>(end_ - p_);
  std::vector<std::unique_ptr<Value>> arena_;
  std::vector<Value*> stack_, memo_;
  std::vector<size_t> marks_;
};

struct PthReader {
  std::string path;
  const FileBytes& file;
  const std::map<std::string, ZipEntry>& zip;
  std::string dir;  // "<archive>/"
  std::vector<TensorView> tensors;

  Error fail(const std::string& what) const { return Error(concat(path, ": ", what)); }

  // A contiguous view inside its storage record; shape and offsets checked
  // against the record's size before any arithmetic can overflow.
  TensorView view(const std::string& name, const Value& t) const {
    auto bad = [&](const std::string& what) { return fail(concat("tensor '", name, "': ", what)); };
    const auto it = zip.find(dir + "data/" + t.storage->s);
    if (it == zip.end()) throw bad(concat("storage record ", dir, "data/", t.storage->s, " is missing"));
    const uint64_t esize = dtype_size(t.storage->dtype), capacity = it->second.size / esize;
    if (t.shape.size() != t.stride.size()) throw bad("size and stride differ in length");
    if (t.i < 0 || static_cast<uint64_t>(t.i) > capacity) throw bad(concat("storage offset ", t.i, " outside its storage"));
    uint64_t numel = 1;
    for (int64_t s : t.shape) {
      if (s < 0) throw bad(concat("negative size ", s));
      if (s != 0 && numel > capacity / static_cast<uint64_t>(s)) throw bad("shape larger than its storage");
      numel *= static_cast<uint64_t>(s);
    }
    if (numel > capacity - static_cast<uint64_t>(t.i)) throw bad("shape larger than its storage");
    int64_t expected = 1;  // row-major strides; no overflow, their product is numel
    for (size_t k = t.shape.size(); numel != 0 && k-- > 0;) {
      if (t.shape[k] != 1 && t.stride[k] != expected) throw bad("not contiguous (strided views are not supported)");
      expected *= t.shape[k];
    }
    TensorView v;
    v.name = name;
    v.dtype = t.storage->dtype;
    v.shape = t.shape;
    v.data = file.data() + it->second.offset + static_cast<uint64_t>(t.i) * esize;
    v.nbytes = numel * esize;
    return v;
  }

  // Tensors of nested dicts are named "outer.inner" (checkpoints that wrap
  // the state dict, e.g. {"model": {...}}); other values are ignored. Each
  // dict is walked once, so shared or self-referencing dicts cost nothing.
  std::set<const Value*> walked;
  void collect(const Value& dict, const std::string& prefix, int depth) {
    if (depth > 8) throw fail("dicts nested deeper than 8 levels");
    if (!walked.insert(&dict).second) return;
    for (const auto& [k, v] : dict.dict) {
      if (k->kind != Value::Kind::String) continue;
      if (v->kind == Value::Kind::Tensor) tensors.push_back(view(prefix + k->s, *v));
      if (v->kind == Value::Kind::Dict) collect(*v, prefix + k->s + ".", depth + 1);
    }
  }
};

}  // namespace

TensorFile read_pth(const std::string& path, std::shared_ptr<const FileBytes> bytes) {
  const std::map<std::string, ZipEntry> zip = read_zip(path, *bytes);
  const std::string pkl_suffix = "data.pkl";
  auto pkl = zip.end();
  for (auto it = zip.begin(); it != zip.end(); ++it) {
    const std::string& n = it->first;
    if (n.size() >= pkl_suffix.size() && n.compare(n.size() - pkl_suffix.size(), pkl_suffix.size(), pkl_suffix) == 0 &&
        (n.size() == pkl_suffix.size() || n[n.size() - pkl_suffix.size() - 1] == '/')) {
      if (pkl != zip.end()) throw Error(concat(path, ": two pickles (", pkl->first, ", ", n, ")"));
      pkl = it;
    }
  }
  if (pkl == zip.end()) throw Error(concat(path, ": zip archive without data.pkl (not a torch.save checkpoint)"));
  PthReader reader{path, *bytes, zip, pkl->first.substr(0, pkl->first.size() - pkl_suffix.size()), {}, {}};
  const auto order = zip.find(reader.dir + "byteorder");
  if (order != zip.end() && std::string(reinterpret_cast<const char*>(bytes->data() + order->second.offset), order->second.size) != "little")
    throw Error(concat(path, ": big-endian checkpoints are not supported"));

  Unpickler machine(concat(path, ": ", pkl->first), bytes->data() + pkl->second.offset, pkl->second.size);
  const Value* root = machine.run();
  if (root->kind != Value::Kind::Dict) throw Error(concat(path, ": the pickle holds a ", kind_name(root->kind), ", not a state dict"));
  reader.collect(*root, "", 0);
  return TensorFile(path, std::move(bytes), std::move(reader.tensors), {});
}

}  // namespace kino
