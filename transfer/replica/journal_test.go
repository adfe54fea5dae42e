package replica

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func writeTestJournal(t *testing.T, path string) int64 {
	t.Helper()
	jw, err := createJournal(path, "vm1")
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(jw.append(jFile, fileRec{name: "vm1/d", existed: true, size: 4096, mtimeNs: 7, mode: 0o644}.encode()))
	must(jw.append(jBlock, appendBlockRec(nil, blockRec{file: 0, off: 0, n: 5, data: []byte("hello")})))
	must(jw.sync())
	fi, _ := os.Stat(path)
	good := fi.Size()
	must(jw.append(jBlock, appendBlockRec(nil, blockRec{file: 0, off: 4096, n: 3, data: []byte("abc")})))
	must(jw.sync())
	must(jw.close())
	return good
}

func TestTornJournalTailIsIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	good := writeTestJournal(t, path)
	full, _ := os.ReadFile(path)
	// Cut the last record at every byte: the journal then ends after the complete records.
	for cut := good; cut < int64(len(full)); cut++ {
		os.WriteFile(path, full[:cut], 0o600)
		st, err := scanJournal(path)
		if err != nil || len(st.files) != 1 || st.blocks != 1 || st.committed {
			t.Fatalf("cut at %d: %+v, %v; want 1 file and 1 block", cut, st, err)
		}
	}
	// A flipped bit in the last record fails its CRC.
	bad := bytes.Clone(full)
	bad[len(bad)-6] ^= 1
	os.WriteFile(path, bad, 0o600)
	if st, _ := scanJournal(path); st.blocks != 1 {
		t.Fatalf("corrupt last record counted: %+v", st)
	}
	os.WriteFile(path, full, 0o600)
	if st, _ := scanJournal(path); st.blocks != 2 || st.set != "vm1" || st.files[0].size != 4096 {
		t.Fatalf("whole journal: %+v", st)
	}
	// A journal torn inside its header is recognised as such (nothing happened under it).
	os.WriteFile(path, full[:5], 0o600)
	if _, err := scanJournal(path); err != errNoHeader {
		t.Fatalf("torn header: %v", err)
	}
}

// FuzzJournal feeds arbitrary bytes to the journal reader and the record decoders; nothing may
// panic or allocate beyond the record limit.
func FuzzJournal(f *testing.F) {
	path := filepath.Join(f.TempDir(), "j")
	jw, err := createJournal(path, "set")
	if err != nil {
		f.Fatal(err)
	}
	jw.append(jFile, fileRec{name: "set/a", existed: true, size: 10}.encode())
	jw.append(jBlock, appendBlockRec(nil, blockRec{off: 0, n: 2, data: []byte("xy")}))
	jw.append(jSmall, smallRec{name: "set/b", existed: true, copy: "1"}.encode())
	jw.append(jCommit, nil)
	jw.sync()
	jw.close()
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 'B'})
	f.Fuzz(func(t *testing.T, b []byte) {
		jr := newJournalReader(bytes.NewReader(b))
		for i := 0; i < 1000; i++ {
			typ, body, ok := jr.next()
			if !ok {
				break
			}
			switch typ {
			case jFile:
				decodeFileRec(body)
			case jBlock:
				decodeBlockRec(body)
			case jSmall:
				decodeSmallRec(body)
			}
		}
		br := bufio.NewReader(bytes.NewReader(b))
		var buf []byte
		for i := 0; i < 1000; i++ {
			var err error
			_, buf, err = readRecord(br, MinBlockSize, buf)
			if err != nil {
				break
			}
		}
	})
}
