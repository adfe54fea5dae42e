package progress

import (
	"sync"
	"testing"
)

func TestCounterConcurrent(t *testing.T) {
	var c Counter
	c.Start("disk0", 1<<20)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.Add(3)
				c.File(1)
			}
		}()
	}
	wg.Wait()
	c.Done()
	s := c.Snapshot()
	if s.Bytes != 8*1000*3 || s.Files != 8000 || s.Items != 1 || s.Done != 1 {
		t.Fatalf("counter state %+v", s)
	}
	if s.Name != "disk0" || s.Total != 1<<20 {
		t.Fatalf("counter item %q total %d", s.Name, s.Total)
	}
}

func TestOrNop(t *testing.T) {
	if _, ok := OrNop(nil).(Nop); !ok {
		t.Fatal("OrNop(nil) is not Nop")
	}
	c := &Counter{}
	if OrNop(c) != Reporter(c) {
		t.Fatal("OrNop(c) did not return c")
	}
	// Nop must accept calls without a Start.
	Nop{}.Add(1)
	Nop{}.File(1)
	Nop{}.Done()
}
