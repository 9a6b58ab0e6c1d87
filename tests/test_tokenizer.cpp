// Tokenizer parity with the fixture (Wan's cleaning + sentencepiece + T5
// conventions), case by case.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "kino/error.h"
#include "text/tokenizer.h"
#include "text/text_clean.h"
#include "support.h"

using namespace kino;

namespace {

struct Case {
  std::string id, raw, cleaned;
};

std::vector<Case> cases() {
  std::ifstream in(test::fixture("MANIFEST.json"));
  nlohmann::json m = nlohmann::json::parse(in);
  std::vector<Case> out;
  for (const auto& c : m["tokenizer_cases"]) out.push_back({c["id"], c["raw"], c["cleaned"]});
  return out;
}

}  // namespace

TEST(Tokenizer, CleaningMatchesWan) {
  KINO_REQUIRE_FIXTURES();
  for (const Case& c : cases()) {
    // NFC composition is left to the tokenizer's NFKC normalizer (the ids
    // test below covers this case); everything else must match exactly.
    if (c.id == "ftfy_nfd") continue;
    EXPECT_EQ(clean_prompt(c.raw), c.cleaned) << c.id;
  }
}

TEST(Tokenizer, IdsAndMasksMatchTheFixtureAtBothLengths) {
  KINO_REQUIRE_FIXTURES();
  Tokenizer tok(test::fixture("tokenizer.model"));
  auto io = test::load_tensors(test::fixture("tokenizer_io.safetensors"));
  const auto all = cases();
  for (int64_t L : {32, 512}) {
    at::Tensor ids = io["ids_L" + std::to_string(L)], mask = io["mask_L" + std::to_string(L)];
    for (size_t i = 0; i < all.size(); ++i) {
      Tokens t = tok.encode(all[i].raw, L);
      at::Tensor got_ids = at::tensor(t.ids, at::kLong), got_mask = at::tensor(t.mask, at::kLong);
      EXPECT_TRUE(at::equal(got_ids, ids[static_cast<int64_t>(i)])) << all[i].id << " L=" << L;
      EXPECT_TRUE(at::equal(got_mask, mask[static_cast<int64_t>(i)])) << all[i].id << " L=" << L;
      EXPECT_EQ(t.length, mask[static_cast<int64_t>(i)].sum().item<int64_t>());
    }
  }
}

TEST(Tokenizer, RawPiecesMatchSentencepiece) {
  KINO_REQUIRE_FIXTURES();
  Tokenizer tok(test::fixture("tokenizer.model"));
  auto io = test::load_tensors(test::fixture("tokenizer_io.safetensors"));
  at::Tensor flat = io["pieces_flat"], off = io["pieces_offsets"];
  const auto all = cases();
  for (size_t i = 0; i < all.size(); ++i) {
    auto p = tok.pieces(all[i].cleaned);
    at::Tensor ref = flat.slice(0, off[static_cast<int64_t>(i)].item<int64_t>(), off[static_cast<int64_t>(i) + 1].item<int64_t>());
    EXPECT_TRUE(at::equal(at::tensor(p, at::kLong), ref)) << all[i].id;
  }
}

TEST(Tokenizer, TruncationKeepsEosLastAndIsReported) {
  KINO_REQUIRE_FIXTURES();
  Tokenizer tok(test::fixture("tokenizer.model"));
  Tokens t = tok.encode("a large red circle moving to the right on a black background", 8);
  EXPECT_TRUE(t.truncated);
  EXPECT_EQ(t.length, 8);
  EXPECT_EQ(t.ids.back(), Tokenizer::kEos);
  Tokens e = tok.encode("", 4);
  EXPECT_EQ(e.ids, (std::vector<int64_t>{1, 0, 0, 0}));
  EXPECT_EQ(e.mask, (std::vector<int64_t>{1, 0, 0, 0}));
}

TEST(Tokenizer, HtmlUnescapeFollowsPython) {
  EXPECT_EQ(html_unescape("&amp;amp; &lt;b&gt; &#65;&#x42; &eacute; &amp"), "&amp; <b> AB \xC3\xA9 &");
  EXPECT_EQ(html_unescape("&#x80;"), "\xE2\x82\xAC");   // C1 read as Windows-1252
  EXPECT_EQ(html_unescape("&#0;"), "\xEF\xBF\xBD");    // invalid -> U+FFFD
  EXPECT_EQ(html_unescape("&unknown; & alone"), "&unknown; & alone");
  EXPECT_EQ(clean_prompt("a &amp;amp; b"), "a & b");  // unescaped twice
}

TEST(Tokenizer, RejectsFilesThatAreNotModels) {
  test::TempDir dir;
  std::ofstream(dir / "junk.model") << "not a model";
  EXPECT_THROW(Tokenizer(dir / "junk.model"), Error);
  EXPECT_THROW(Tokenizer(dir / "absent.model"), Error);
}
