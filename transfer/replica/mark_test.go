package replica

import "testing"

// FuzzDecodeMark feeds arbitrary bytes (a far side's answer) to the mark decoder: it never
// panics, and what it accepts encodes to bytes that decode to the same mark.
func FuzzDecodeMark(f *testing.F) {
	f.Add(Mark{Exists: true, Size: 64 << 20, Mtime: 1765000000123456789, Seed: 0xdeadbeef}.encode())
	f.Add(Mark{}.encode())
	f.Add([]byte{1, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMark(b)
		if err != nil {
			return
		}
		if m.Size < 0 {
			t.Fatalf("accepted a negative size: %+v", m)
		}
		if again, err := decodeMark(m.encode()); err != nil || again != m {
			t.Fatalf("mark %+v does not round-trip: %+v %v", m, again, err)
		}
	})
}
