package disk

import (
	"testing"

	"github.com/snapferry/snapferry/images/store"
)

// advisingBackend is a store that asks for n loads in flight (an ssh:// store with read lanes on
// a long link).
type advisingBackend struct {
	store.Backend
	n int
}

func (b advisingBackend) LoadParallelism() int { return b.n }

// storeWithBackend is a BlobStore whose backend can be asked, as a *repo.Repository.
type storeWithBackend struct {
	discardStore
	be store.Backend
}

func (s storeWithBackend) Backend() store.Backend { return s.be }

// TestRestoreWorkersFollowTheStore: a restore runs as many workers as the store asks for when
// that is more than its default, never fewer, and exactly what the caller asked for if it did.
func TestRestoreWorkersFollowTheStore(t *testing.T) {
	def := defaultWorkers(0)
	many := storeWithBackend{be: advisingBackend{n: def + 5}}
	few := storeWithBackend{be: advisingBackend{n: 1}}
	for _, c := range []struct {
		name  string
		bs    storeWithBackend
		asked int
		want  int
	}{
		{"store asks for more", many, 0, def + 5},
		{"store asks for fewer", few, 0, def},
		{"caller decides", many, 3, 3},
		{"store without advice", storeWithBackend{be: advisingBackend{n: 0}}, 0, def},
	} {
		if got := restoreWorkers(c.bs, c.asked); got != c.want {
			t.Errorf("%s: %d workers, want %d", c.name, got, c.want)
		}
	}
	if got := restoreWorkers(discardStore{}, 0); got != def {
		t.Errorf("a BlobStore without a backend: %d workers, want %d", got, def)
	}
}
