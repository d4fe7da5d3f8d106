#include "tokenizer/bytes.h"

#include <array>

#include "common/utf8.h"

namespace grpo::bytelevel {
namespace {

struct Alphabet {
  std::array<char32_t, 256> symbol{};
  std::array<int, 512> byte_of{};  // code point (< 512) -> byte, or -1

  Alphabet() {
    byte_of.fill(-1);
    auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; };
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) symbol[b] = printable(b) ? static_cast<char32_t>(b) : next++;
    for (int b = 0; b < 256; ++b) byte_of[symbol[b]] = b;
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

}  // namespace

char32_t symbol_of(unsigned char b) { return alphabet().symbol[b]; }

std::string to_symbols(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) utf8::append(out, alphabet().symbol[b]);
  return out;
}

std::optional<std::string> to_bytes(std::string_view symbols) {
  const Alphabet& a = alphabet();
  std::string out;
  out.reserve(symbols.size());
  for (size_t pos = 0; pos < symbols.size();) {
    char32_t cp;
    pos += utf8::decode(symbols, pos, &cp);
    if (cp == utf8::kInvalid || cp >= a.byte_of.size() || a.byte_of[cp] < 0) return std::nullopt;
    out += static_cast<char>(a.byte_of[cp]);
  }
  return out;
}

}  // namespace grpo::bytelevel
