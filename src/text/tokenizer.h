// Text -> token ids with T5 conventions: the prompt is cleaned as Wan does,
// encoded by sentencepiece, EOS (1) appended, truncated to max_len keeping EOS
// last, right-padded with pad (0); mask is 1 on pieces and EOS.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kino {

struct Tokens {
  std::vector<int64_t> ids;   // max_len entries
  std::vector<int64_t> mask;  // max_len entries, 1 = valid
  int64_t length = 0;         // valid entries (pieces + EOS)
  bool truncated = false;     // pieces were dropped to fit max_len
};

class Tokenizer {
 public:
  static constexpr int64_t kPad = 0, kEos = 1, kUnk = 2;

  explicit Tokenizer(const std::string& model_path);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Raw sentencepiece ids of already-cleaned text.
  std::vector<int64_t> pieces(const std::string& cleaned) const;
  // clean_prompt + pieces + T5 conventions.
  Tokens encode(const std::string& text, int64_t max_len) const;
  int64_t vocab_size() const;

 private:
  void* handle_ = nullptr;
};

// Trains a sentencepiece model (`args` in spm_train's flag syntax).
void train_sentencepiece(const std::string& args);

}  // namespace kino
