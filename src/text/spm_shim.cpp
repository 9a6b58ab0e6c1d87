// C interface to sentencepiece, built as its own shared library and loaded
// with dlmopen(LM_ID_NEWLM) (see tokenizer.cpp): Debian's sentencepiece
// bundles a protobuf that clashes with libtorch's inside one link namespace.
// Only plain C data crosses this boundary (the namespace has its own heap).
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstring>
#include <string>
#include <vector>

namespace {
void copy_error(const std::string& msg, char* err, int cap) {
  if (!err || cap <= 0) return;
  std::strncpy(err, msg.c_str(), static_cast<size_t>(cap - 1));
  err[cap - 1] = '\0';
}
}  // namespace

extern "C" {

// `data`: a serialized ModelProto (a tokenizer.model file's bytes).
void* kino_spm_load(const char* data, size_t size, char* err, int errcap) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  auto status = sp->LoadFromSerializedProto(std::string(data, size));
  if (!status.ok()) {
    copy_error(status.ToString(), err, errcap);
    delete sp;
    return nullptr;
  }
  return sp;
}

void kino_spm_free(void* handle) { delete static_cast<sentencepiece::SentencePieceProcessor*>(handle); }

int kino_spm_vocab_size(void* handle) { return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->GetPieceSize(); }

// Writes up to `cap` ids and returns how many the text has (call again with a
// larger buffer if that exceeds cap); -1 on error.
int kino_spm_encode(void* handle, const char* text, int* out, int cap) {
  std::vector<int> ids;
  if (!static_cast<sentencepiece::SentencePieceProcessor*>(handle)->Encode(text, &ids).ok()) return -1;
  for (int i = 0; i < static_cast<int>(ids.size()) && i < cap; ++i) out[i] = ids[i];
  return static_cast<int>(ids.size());
}

// Trains a model; `args` is sentencepiece's flag string. Returns 0 on success.
int kino_spm_train(const char* args, char* err, int errcap) {
  auto status = sentencepiece::SentencePieceTrainer::Train(args);
  if (!status.ok()) {
    copy_error(status.ToString(), err, errcap);
    return 1;
  }
  return 0;
}

}  // extern "C"
