package tape

import (
	"bytes"
	"context"
	"testing"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// Decoders of what comes off a tape must turn any bytes into an error, never a panic or a huge
// allocation: a tape can be damaged, or not ours.
func FuzzDecodeRecord(f *testing.F) {
	buf := make([]byte, MinBlockSize)
	encodeRecord(buf, Record{Type: RecData, Stream: 3, Seq: 9, Payload: []byte("payload")})
	f.Add(append([]byte(nil), buf...))
	f.Add([]byte("SFT1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeRecord(b)
		if err == nil && len(rec.Payload) > len(b)-RecordHeader {
			t.Fatalf("payload of %d bytes from a %d-byte record", len(rec.Payload), len(b))
		}
	})
}

func FuzzUnpack(f *testing.F) {
	var stream bytes.Buffer
	enc, _ := NewEncoder(&stream, 4096)
	data := []byte("some block data")
	enc.SaveBlob(context.Background(), repo.DataBlob, enc.BlobID(data), data)
	enc.Finish(&repo.Snapshot{Source: "s"})
	f.Add(stream.Bytes())
	f.Add([]byte{'S', 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{'B', 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		Unpack(context.Background(), bytes.NewReader(b), memblobs.New(4096))
	})
}
