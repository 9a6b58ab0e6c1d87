// Prompt text as Wan's tokenizer sees it, and UTF-8 checks. No torch, no
// sentencepiece here.
#pragma once
#include <string>

namespace kino {

// Wan's prompt clean-up (HuggingfaceTokenizer(clean='whitespace')): a subset
// of ftfy.fix_text (curly quotes, ligatures, full-width forms, whole-string
// UTF-8/Windows-1252 mojibake; no NFC), html.unescape twice, strip, every
// run of Unicode whitespace -> one space, strip.
std::string clean_prompt(const std::string& text);
// Python's html.unescape: named (common HTML5 set) and numeric references.
std::string html_unescape(const std::string& text);
// True if `text` is well-formed UTF-8.
bool is_valid_utf8(const std::string& text);

}  // namespace kino
