// The byte-level alphabet of GPT-2 style BPE: each of the 256 byte values is written as one
// printable code point (printable Latin-1 bytes stand for themselves, the others are shifted to
// U+0100.. in byte order, so ' ' is 'Ġ' U+0120 and '\n' is 'Ċ' U+010A). Vocabulary entries are
// strings over this alphabet; these functions convert between them and raw bytes.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace grpo::bytelevel {

// The code point standing for byte b.
char32_t symbol_of(unsigned char b);

// Raw bytes -> alphabet string (UTF-8).
std::string to_symbols(std::string_view bytes);

// Alphabet string -> raw bytes; nullopt when some character is not in the alphabet (or the
// string is not valid UTF-8).
std::optional<std::string> to_bytes(std::string_view symbols);

}  // namespace grpo::bytelevel
