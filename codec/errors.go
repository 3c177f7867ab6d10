package codec

import (
	"errors"
	"fmt"
)

// ErrCorrupt reports a record that cannot be decoded: too short, an unknown
// version or flags, a checksum mismatch, a payload that does not decompress, or
// one that decompresses to more than Config.MaxValue. Every decode failure wraps
// it, so callers test with errors.Is and can treat the key as missing.
var ErrCorrupt = errors.New("codec: corrupt record")

// corrupt wraps ErrCorrupt with what is wrong with the record.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// ErrRef is Decode's answer for a record whose value lives in a value log
// (Header.Ref): the record is sound, but its value is not in it.
var ErrRef = errors.New("codec: the value is stored outside the record")
