package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/storetest"
	"github.com/snapferry/snapferry/transfer/s3store"
	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
)

// fault is what faultyTransport does to one request instead of passing it on unchanged.
type fault struct {
	status int    // answer with this status and S3 error code, without asking the server
	code   string //
	cutAt  int64  // pass on, but break the response body after this many bytes (> 0)
}

// faultyTransport sits between the store and RGW: rule picks a fault (or nil) per request; it
// counts requests and the most that were in flight at once.
type faultyTransport struct {
	rt       http.RoundTripper
	mu       sync.Mutex
	rule     func(req *http.Request) *fault
	requests atomic.Int64
	puts     atomic.Int64
	inFlight atomic.Int64
	maxIn    atomic.Int64
}

func (f *faultyTransport) setRule(rule func(req *http.Request) *fault) {
	f.mu.Lock()
	f.rule = rule
	f.mu.Unlock()
}

func (f *faultyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f.requests.Add(1)
	if req.Method == http.MethodPut {
		f.puts.Add(1)
	}
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxIn.Load()
		if n <= m || f.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	f.mu.Lock()
	rule := f.rule
	f.mu.Unlock()
	var ft *fault
	if rule != nil {
		ft = rule(req)
	}
	if ft != nil && ft.status != 0 {
		if req.Body != nil {
			_, _ = io.Copy(io.Discard, req.Body)
			req.Body.Close()
		}
		body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected</Message></Error>`, ft.code)
		return &http.Response{StatusCode: ft.status, Status: http.StatusText(ft.status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/xml"}}, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: req}, nil
	}
	resp, err := f.rt.RoundTrip(req)
	if err == nil && ft != nil && ft.cutAt > 0 {
		resp.Body = &cutBody{ReadCloser: resp.Body, left: ft.cutAt}
	}
	return resp, err
}

// cutBody breaks like a connection reset after left bytes.
type cutBody struct {
	io.ReadCloser
	left int64
}

func (c *cutBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("read: %w", syscall.ECONNRESET)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= int64(n)
	return n, err
}

func faultyStore(t *testing.T, srv rgwtest.Server, o s3store.Options) (*s3store.Store, *faultyTransport) {
	t.Helper()
	ft := &faultyTransport{rt: http.DefaultTransport.(*http.Transport).Clone()}
	o.Transport = ft
	s := newStore(t, srv, o)
	if err := s.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, ft
}

// failFirst injects f into the first n requests with the given method.
func failFirst(method string, n int64, f fault) func(*http.Request) *fault {
	var seen atomic.Int64
	return func(req *http.Request) *fault {
		if req.Method == method && seen.Add(1) <= n {
			return &f
		}
		return nil
	}
}

// TestTransientErrorsAreRetried: throttling (503 SlowDown), a 500 and a 429 pass after retries
// with backoff, and the file is stored once, whole.
func TestTransientErrorsAreRetried(t *testing.T) {
	srv := rgwtest.Get(t)
	for _, f := range []fault{{status: 503, code: "SlowDown"}, {status: 500, code: "InternalError"}, {status: 429, code: "TooManyRequests"}} {
		t.Run(f.code, func(t *testing.T) {
			s, ft := faultyStore(t, srv, s3store.Options{})
			ft.setRule(failFirst(http.MethodPut, 3, f))
			h := store.Handle{Kind: store.KindSnapshots, Name: storetest.Name(1)}
			data := storetest.Data(1, 100_000)
			before := ft.puts.Load()
			if err := s.Save(context.Background(), h, bytes.NewReader(data)); err != nil {
				t.Fatalf("save through 3 x %d %s: %v", f.status, f.code, err)
			}
			if n := ft.puts.Load() - before; n != 4 {
				t.Errorf("save took %d PUT requests, want 4 (3 refused, 1 stored)", n)
			}
			if got := loadAll(t, s, h); !bytes.Equal(got, data) {
				t.Errorf("stored file differs")
			}
		})
	}
}

// TestPermanentErrorsFailAtOnce: access denied is not retried and says so; a missing bucket is
// named in the error.
func TestPermanentErrorsFailAtOnce(t *testing.T) {
	srv := rgwtest.Get(t)
	s, ft := faultyStore(t, srv, s3store.Options{})
	if _, err := s.Retention(context.Background()); err != nil { // asked once, before the 403s
		t.Fatal(err)
	}
	ft.setRule(func(*http.Request) *fault { return &fault{status: 403, code: "AccessDenied"} })
	before := ft.requests.Load()
	err := s.Save(context.Background(), store.Handle{Kind: store.KindIndex, Name: storetest.Name(2)}, bytes.NewReader([]byte("x")))
	if !errors.Is(err, s3store.ErrPermanent) || !strings.Contains(err.Error(), "access denied") {
		t.Errorf("save on 403: %v, want a permanent access-denied error", err)
	}
	if n := ft.requests.Load() - before; n != 1 {
		t.Errorf("403 was tried %d times, want once", n)
	}

	missing := newStore(t, srv, s3store.Options{Bucket: rgwtest.NewBucketName(t)})
	_, err = missing.Load(context.Background(), store.Handle{Kind: store.KindConfig}, 0, 0)
	if !errors.Is(err, s3store.ErrPermanent) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("load from a missing bucket: %v, want a permanent error naming the bucket", err)
	}
}

// TestCutReadResumes: a pack read whose connection breaks twice mid-body still returns every
// byte, reopened where it stopped.
func TestCutReadResumes(t *testing.T) {
	srv := rgwtest.Get(t)
	s, ft := faultyStore(t, srv, s3store.Options{})
	h := store.Handle{Kind: store.KindData, Name: storetest.Name(3)}
	data := storetest.Data(3, 3<<20)
	if err := s.Save(context.Background(), h, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	ft.setRule(failFirst(http.MethodGet, 2, fault{cutAt: 1 << 20}))
	if got := loadAll(t, s, h); !bytes.Equal(got, data) {
		t.Fatalf("read across two cut connections: %d bytes, want %d equal", len(got), len(data))
	}
	ft.setRule(failFirst(http.MethodGet, 1, fault{cutAt: 1000}))
	rd, err := s.Load(context.Background(), h, 500_000, 2_000_000)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rd)
	rd.Close()
	if err != nil || !bytes.Equal(got, data[500_000:2_500_000]) {
		t.Fatalf("ranged read across a cut connection: %d bytes, %v", len(got), err)
	}
}

// TestFailedMultipartIsAborted: a large save whose second part is refused, and one cancelled
// mid-upload, leave no file and no unfinished upload behind.
func TestFailedMultipartIsAborted(t *testing.T) {
	srv := rgwtest.Get(t)
	s, ft := faultyStore(t, srv, s3store.Options{PartSize: 5 << 20})
	h := store.Handle{Kind: store.KindData, Name: storetest.Name(4)}
	ft.setRule(func(req *http.Request) *fault {
		if req.Method == http.MethodPut && req.URL.Query().Get("partNumber") == "2" {
			return &fault{status: 403, code: "AccessDenied"}
		}
		return nil
	})
	if err := s.Save(context.Background(), h, storetest.NewReader(4, 12<<20)); err == nil {
		t.Fatal("save with a refused part succeeded")
	}
	ft.setRule(nil)
	ctx, cancel := context.WithCancel(context.Background())
	err := s.Save(ctx, store.Handle{Kind: store.KindData, Name: storetest.Name(5)},
		io.MultiReader(storetest.NewReader(5, 7<<20), cancelThen(cancel), storetest.NewReader(6, 7<<20)))
	if err == nil {
		t.Fatal("cancelled save succeeded")
	}
	assertNoUploads(t, s)
	if _, err := s.Stat(context.Background(), h); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("failed save left %s: %v", h, err)
	}
}

// cancelThen is a reader that cancels when reached and returns nothing.
type cancelReader func()

func (c cancelReader) Read([]byte) (int, error) { c(); return 0, io.EOF }

func cancelThen(cancel context.CancelFunc) io.Reader { return cancelReader(cancel) }

func assertNoUploads(t *testing.T, s *s3store.Store) {
	t.Helper()
	for u := range s.Client().ListIncompleteUploads(context.Background(), s.Bucket(), "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		t.Errorf("unfinished upload left: %s (%s)", u.Key, u.UploadID)
	}
}

// TestConnectionsBound: with --s3-connections=2, sixteen concurrent saves never have more than
// two requests in flight.
func TestConnectionsBound(t *testing.T) {
	srv := rgwtest.Get(t)
	s, ft := faultyStore(t, srv, s3store.Options{Connections: 2})
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := s.Save(context.Background(), store.Handle{Kind: store.KindData, Name: storetest.Name(100 + i)},
				bytes.NewReader(storetest.Data(uint64(i), 300_000))); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if m := ft.maxIn.Load(); m > 2 || m < 1 {
		t.Errorf("%d requests in flight at once, want at most 2", m)
	}
}

func loadAll(t *testing.T, s store.Backend, h store.Handle) []byte {
	t.Helper()
	rd, err := s.Load(context.Background(), h, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLockConfigDeniedIsNoLock: a least-privilege key that may not read the bucket's Object Lock
// setting (403 on ?object-lock), or a server without that API (501), still saves.
func TestLockConfigDeniedIsNoLock(t *testing.T) {
	srv := rgwtest.Get(t)
	for _, f := range []fault{{status: 403, code: "AccessDenied"}, {status: 501, code: "NotImplemented"}} {
		s, ft := faultyStore(t, srv, s3store.Options{})
		ft.setRule(func(req *http.Request) *fault {
			if _, ok := req.URL.Query()["object-lock"]; ok {
				return &f
			}
			return nil
		})
		if d, err := s.Retention(context.Background()); err != nil || d != 0 {
			t.Errorf("%s on the lock setting: retention %s, %v; want none, no error", f.code, d, err)
		}
		h := store.Handle{Kind: store.KindIndex, Name: storetest.Name(9)}
		if err := s.Save(context.Background(), h, bytes.NewReader([]byte("index"))); err != nil {
			t.Errorf("save with %s on the lock setting: %v", f.code, err)
		}
	}
}
