// Prompt clean-up as Wan's HuggingfaceTokenizer(clean='whitespace') does it:
// ftfy.fix_text, html.unescape twice, strip, collapse whitespace, strip.
#include <cctype>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "text/text_clean.h"

namespace kino {

namespace {

using Codepoints = std::vector<char32_t>;

// Decodes UTF-8; returns false on any malformed sequence.
bool decode_utf8(const std::string& s, Codepoints& out) {
  out.clear();
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : -1;
    if (n < 0 || i + n >= s.size() + (n == 0)) return false;
    char32_t cp = n == 0 ? c : c & (0x3F >> n);
    for (int k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static const char32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    out.push_back(cp);
    i += static_cast<size_t>(n) + 1;
  }
  return true;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string encode_utf8(const Codepoints& cps) {
  std::string out;
  for (char32_t cp : cps) append_utf8(out, cp);
  return out;
}

// Windows-1252 bytes 0x80..0x9F (0 where undefined).
constexpr char32_t kCp1252High[32] = {
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
    0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178};

// UTF-8 that was decoded as Windows-1252/Latin-1 ("cafÃ©"): if every code
// point maps back to one byte and those bytes are valid UTF-8 with at least
// one multi-byte character, the bytes were the real text.
bool fix_mojibake(Codepoints& cps) {
  std::string bytes;
  bool multibyte = false;
  for (char32_t cp : cps) {
    int b = -1;
    if (cp < 0x100) {
      b = static_cast<int>(cp);
    } else {
      for (int i = 0; i < 32; ++i)
        if (kCp1252High[i] == cp) b = 0x80 + i;
    }
    if (b < 0) return false;
    multibyte |= b >= 0x80;
    bytes += static_cast<char>(b);
  }
  Codepoints fixed;
  if (!multibyte || !decode_utf8(bytes, fixed)) return false;
  cps = std::move(fixed);
  return true;
}

bool is_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || c == 0xFEFF;
}

// The parts of ftfy.fix_text that change what an English/German/CJK prompt
// tokenizes to; NFC composition is left to the tokenizer's NFKC normalizer.
Codepoints ftfy_subset(Codepoints cps) {
  fix_mojibake(cps);
  Codepoints out;
  for (char32_t c : cps) {
    if (is_control(c)) continue;
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) {
      out.push_back('\'');  // uncurl_quotes
    } else if (c >= 0x201C && c <= 0x201F) {
      out.push_back('"');
    } else if (c >= 0xFF01 && c <= 0xFF5E) {
      out.push_back(c - 0xFEE0);  // fix_character_width
    } else if (c >= 0xFB00 && c <= 0xFB06 && c != 0xFB05) {
      static const char* kLigatures[] = {"ff", "fi", "fl", "ffi", "ffl", "", "st"};
      for (const char* p = kLigatures[c - 0xFB00]; *p; ++p) out.push_back(static_cast<char32_t>(*p));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Python's str.isspace() set (also what `\s` matches in a str pattern).
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

Codepoints collapse_whitespace(const Codepoints& cps) {
  Codepoints out;
  bool pending = false;
  for (char32_t c : cps) {
    if (is_space(c)) {
      pending = true;
      continue;
    }
    if (pending && !out.empty()) out.push_back(' ');
    pending = false;
    out.push_back(c);
  }
  return out;
}

struct Entity {
  const char* name;
  char32_t cp;
  bool legacy;  // also recognised without the trailing ';' (HTML5 legacy)
};
// The named references prompts actually carry; html.unescape knows all 2231.
constexpr Entity kEntities[] = {
    {"amp", '&', true},      {"lt", '<', true},         {"gt", '>', true},        {"quot", '"', true},
    {"apos", '\'', false},   {"nbsp", 0xA0, true},      {"copy", 0xA9, true},     {"reg", 0xAE, true},
    {"trade", 0x2122, false}, {"hellip", 0x2026, false}, {"mdash", 0x2014, false}, {"ndash", 0x2013, false},
    {"lsquo", 0x2018, false}, {"rsquo", 0x2019, false},  {"ldquo", 0x201C, false}, {"rdquo", 0x201D, false},
    {"laquo", 0xAB, true},   {"raquo", 0xBB, true},     {"deg", 0xB0, true},      {"times", 0xD7, true},
    {"divide", 0xF7, true},  {"middot", 0xB7, true},    {"euro", 0x20AC, false},  {"pound", 0xA3, true},
    {"yen", 0xA5, true},     {"cent", 0xA2, true},      {"sect", 0xA7, true},     {"para", 0xB6, true},
    {"auml", 0xE4, true},    {"ouml", 0xF6, true},      {"uuml", 0xFC, true},     {"Auml", 0xC4, true},
    {"Ouml", 0xD6, true},    {"Uuml", 0xDC, true},      {"szlig", 0xDF, true},    {"eacute", 0xE9, true},
    {"egrave", 0xE8, true},  {"ecirc", 0xEA, true},     {"agrave", 0xE0, true},   {"aacute", 0xE1, true},
    {"ccedil", 0xE7, true},  {"iuml", 0xEF, true},      {"ntilde", 0xF1, true},   {"oacute", 0xF3, true},
    {"Eacute", 0xC9, true},  {"shy", 0xAD, true},       {"bull", 0x2022, false},  {"larr", 0x2190, false},
    {"rarr", 0x2192, false}, {"uarr", 0x2191, false},   {"darr", 0x2193, false},  {"hearts", 0x2665, false},
};

// html.unescape's numeric rule: C1 controls read as Windows-1252, invalid
// code points become U+FFFD.
std::string numeric_reference(uint64_t n) {
  char32_t cp;
  if (n >= 0x80 && n <= 0x9F && kCp1252High[n - 0x80]) {
    cp = kCp1252High[n - 0x80];
  } else if (n == 0 || n > 0x10FFFF || (n >= 0xD800 && n <= 0xDFFF)) {
    cp = 0xFFFD;
  } else if (n == 0x0D) {
    cp = '\r';
  } else {
    cp = static_cast<char32_t>(n);
  }
  std::string out;
  append_utf8(out, cp);
  return out;
}

}  // namespace

bool is_valid_utf8(const std::string& text) {
  Codepoints cps;
  return decode_utf8(text, cps);
}

std::string html_unescape(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '&') {
      out += s[i++];
      continue;
    }
    size_t j = i + 1;
    if (j < s.size() && s[j] == '#') {
      ++j;
      const bool hex = j < s.size() && (s[j] == 'x' || s[j] == 'X');
      if (hex) ++j;
      size_t k = j;
      uint64_t n = 0;
      while (k < s.size() && (hex ? std::isxdigit(static_cast<unsigned char>(s[k])) : std::isdigit(static_cast<unsigned char>(s[k])))) {
        const int c = std::tolower(static_cast<unsigned char>(s[k]));
        if (n <= 0x10FFFF) n = n * (hex ? 16 : 10) + static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
        ++k;
      }
      if (k > j) {
        out += numeric_reference(n);
        i = k + (k < s.size() && s[k] == ';');
        continue;
      }
    } else {
      const Entity* best = nullptr;
      size_t best_len = 0;
      for (const auto& e : kEntities) {
        const size_t len = std::char_traits<char>::length(e.name);
        if (s.compare(j, len, e.name) != 0) continue;
        const bool semi = j + len < s.size() && s[j + len] == ';';
        if ((semi || e.legacy) && len + semi > best_len) {
          best = &e;
          best_len = len + semi;
        }
      }
      if (best) {
        append_utf8(out, best->cp);
        i = j + best_len;
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

std::string clean_prompt(const std::string& text) {
  Codepoints cps;
  if (!decode_utf8(text, cps)) return text;  // callers reject invalid UTF-8 earlier
  std::string s = encode_utf8(ftfy_subset(cps));
  s = html_unescape(html_unescape(s));
  decode_utf8(s, cps);
  return encode_utf8(collapse_whitespace(cps));
}

}  // namespace kino
