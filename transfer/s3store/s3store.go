package s3store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/ratelimit"
)

// Defaults of Options.
const (
	DefaultPartSize    = 16 << 20
	DefaultConnections = 8
	// minPartSize is S3's smallest part but the last.
	minPartSize = 5 << 20
)

// Options say where the repository is and how to reach it.
type Options struct {
	Endpoint string // host[:port]
	Bucket   string
	Prefix   string // folder in the bucket ("" = the bucket root), no leading or trailing slash
	// InsecureHTTP speaks plain http (a private network); the default is https.
	InsecureHTTP bool
	// CAFile adds the PEM certificates in it to the trusted roots (a private CA).
	CAFile string
	Region string // "" = us-east-1, what most S3-compatible servers expect
	// Credentials; nil = the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
	// AWS_SESSION_TOKEN), then the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or
	// ~/.aws/credentials, profile AWS_PROFILE).
	Credentials *credentials.Credentials
	// Connections bounds the requests in flight at once (default 8): sockets, and the parts of
	// all uploads sent at once (a part sent from its source costs no buffer, see save_source.go).
	Connections int
	// PartSize is the multipart part size and the largest file sent in one request
	// (default 16 MiB; at least 5 MiB).
	PartSize int64
	// MaxRetries is how many times minio-go tries a request that failed transiently
	// (default 10; 1 = no retry).
	MaxRetries int
	// LockFor, when positive, makes Create set up Object Lock: the bucket made with it (or
	// checked to have it) and its default retention set to this long (see lock.go).
	LockFor time.Duration
	// Limiter, when set, paces the bytes of every request body (--bwlimit), resends included.
	Limiter *ratelimit.Limiter
	// Transport, when set, carries the requests instead of a fresh http.Transport (tests inject
	// faults here). Connections still bounds it.
	Transport http.RoundTripper
	// Now is the clock for retention dates (default time.Now).
	Now func() time.Time
}

// Store is an S3 bucket (or a prefix in one) holding one repository.
type Store struct {
	cl       *minio.Client
	core     minio.Core
	o        Options
	location string
	// lock caches the bucket's default retention once asked (Retention).
	lock struct {
		sync.Mutex
		known     bool
		retention time.Duration
	}
}

var (
	_ store.Backend     = (*Store)(nil)
	_ store.Cleaner     = (*Store)(nil)
	_ store.TempCleaner = (*Store)(nil)
)

// New returns the store described by o. It makes no request: a wrong endpoint, bucket or key
// shows at the first operation, with an error that names it.
func New(o Options) (*Store, error) {
	if o.Endpoint == "" || o.Bucket == "" {
		return nil, fmt.Errorf("s3 store: endpoint and bucket are required")
	}
	o.Prefix = strings.Trim(o.Prefix, "/")
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Connections <= 0 {
		o.Connections = DefaultConnections
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.PartSize < minPartSize {
		return nil, fmt.Errorf("s3 store: part size %d is below S3's minimum of 5 MiB", o.PartSize)
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	scheme := "https"
	if o.InsecureHTTP {
		scheme = "http"
	}
	loc := "s3://" + o.Endpoint + "/" + o.Bucket
	if o.Prefix != "" {
		loc += "/" + o.Prefix
	}
	if o.InsecureHTTP {
		loc += " (plain http)"
	}
	creds := o.Credentials
	if creds == nil {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}})
	}
	if v, err := creds.GetWithContext(nil); err != nil || v.AccessKeyID == "" || v.SecretAccessKey == "" {
		return nil, fmt.Errorf("s3 store %s: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "+
			"or put them in ~/.aws/credentials (or the file AWS_SHARED_CREDENTIALS_FILE names)", loc)
	}
	rt := o.Transport
	if rt == nil {
		t, err := transport(o)
		if err != nil {
			return nil, fmt.Errorf("s3 store %s: %w", loc, err)
		}
		rt = t
	}
	cl, err := minio.New(o.Endpoint, &minio.Options{
		Creds:  creds,
		Secure: !o.InsecureHTTP,
		// Path-style (https://host/bucket/key): works with IP endpoints and with servers
		// without wildcard DNS, which is most self-hosted ones.
		BucketLookup: minio.BucketLookupPath,
		Region:       o.Region,
		Transport:    &limitedTransport{rt: rt, slots: make(chan struct{}, o.Connections)},
		MaxRetries:   o.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 store %s://%s: %w", scheme, o.Endpoint, err)
	}
	return &Store{cl: cl, core: minio.Core{Client: cl}, o: o, location: loc}, nil
}

// transport is a fresh HTTP transport with as many idle connections kept as requests may run,
// trusting o.CAFile's certificates besides the system's.
func transport(o Options) (*http.Transport, error) {
	t, err := minio.DefaultTransport(!o.InsecureHTTP)
	if err != nil {
		return nil, err
	}
	t.MaxIdleConnsPerHost = o.Connections
	t.MaxConnsPerHost = o.Connections
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.CAFile)
		}
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		t.TLSClientConfig.RootCAs = pool
	}
	return t, nil
}

// limitedTransport lets at most cap(slots) requests run at once (--s3-connections): a response
// holds its slot until its body is closed, as a connection does.
type limitedTransport struct {
	rt    http.RoundTripper
	slots chan struct{}
}

func (t *limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	select {
	case t.slots <- struct{}{}:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		<-t.slots
		return nil, err
	}
	resp.Body = &slotBody{ReadCloser: resp.Body, release: func() { <-t.slots }}
	return resp, nil
}

type slotBody struct {
	io.ReadCloser
	release func()
	done    bool
}

func (b *slotBody) Close() error {
	err := b.ReadCloser.Close()
	if !b.done {
		b.done = true
		b.release()
	}
	return err
}

// Location is the s3:// URL of the repository.
func (s *Store) Location() string { return s.location }

// Client is the minio client (tests and the Object Lock renewal use it).
func (s *Store) Client() *minio.Client { return s.cl }

// Bucket is the bucket name.
func (s *Store) Bucket() string { return s.o.Bucket }

// key is the object name of h.
func (s *Store) key(h store.Handle) string { return s.join(store.RelPath(h)) }

func (s *Store) join(rel string) string {
	if s.o.Prefix == "" {
		return rel
	}
	return s.o.Prefix + "/" + rel
}

// Create makes the bucket when it is missing (with Object Lock when LockFor is set) and fails
// when a repository config already exists. S3 has no folders to make.
func (s *Store) Create(ctx context.Context) error {
	ok, err := s.cl.BucketExists(ctx, s.o.Bucket)
	if err != nil {
		return s.wrap("create", "", err)
	}
	if !ok {
		err := s.cl.MakeBucket(ctx, s.o.Bucket, minio.MakeBucketOptions{Region: s.o.Region, ObjectLocking: s.o.LockFor > 0})
		if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
			return s.wrap("create bucket", "", err)
		}
	} else if s.o.LockFor > 0 {
		if err := s.checkLockEnabled(ctx); err != nil {
			return err
		}
	}
	// Only an empty bucket or prefix takes a new repository (store.Found), as every backend.
	var found store.Found
	prefix := ""
	if s.o.Prefix != "" {
		prefix = s.o.Prefix + "/"
	}
	lctx, cancel := context.WithCancel(ctx)
	for oi := range s.cl.ListObjects(lctx, s.o.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if oi.Err != nil {
			cancel()
			return s.wrap("look into", "", oi.Err)
		}
		if !found.Add(strings.TrimPrefix(oi.Key, prefix)) {
			break
		}
	}
	cancel() // stops minio's listing goroutine when the walk ended early
	if err := found.Refusal(s.location); err != nil {
		return err
	}
	if s.o.LockFor > 0 {
		return s.setDefaultRetention(ctx)
	}
	return nil
}

// Stat returns the size and write time of h.
func (s *Store) Stat(ctx context.Context, h store.Handle) (store.FileInfo, error) {
	if err := store.Validate(h); err != nil {
		return store.FileInfo{}, fmt.Errorf("stat %s: %w", h, err)
	}
	oi, err := s.cl.StatObject(ctx, s.o.Bucket, s.key(h), minio.StatObjectOptions{})
	if err != nil {
		return store.FileInfo{}, s.wrap("stat", h.String(), err)
	}
	return store.FileInfo{Name: h.Name, Size: oi.Size, ModTime: seconds(oi.LastModified)}, nil
}

// List calls fn for every object of kind k. Data objects are listed below data/ recursively, so
// the shards need no separate requests; keys that do not fit the layout are skipped.
func (s *Store) List(ctx context.Context, k store.Kind, fn func(store.FileInfo) error) error {
	if k == store.KindConfig {
		fi, err := s.Stat(ctx, store.Handle{Kind: k})
		if errors.Is(err, store.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(fi)
	}
	if err := store.Validate(store.Handle{Kind: k, Name: "x"}); err != nil {
		return fmt.Errorf("list: %w", err)
	}
	prefix := s.join(string(k)) + "/"
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio's listing goroutine when fn ends the walk early
	for oi := range s.cl.ListObjects(ctx, s.o.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if oi.Err != nil {
			return s.wrap("list", string(k), oi.Err)
		}
		name := path.Base(oi.Key)
		if store.Validate(store.Handle{Kind: k, Name: name}) != nil || s.key(store.Handle{Kind: k, Name: name}) != oi.Key {
			continue
		}
		if err := fn(store.FileInfo{Name: name, Size: oi.Size, ModTime: seconds(oi.LastModified)}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Remove deletes h. S3 deletes of missing keys succeed, so Remove asks first to keep the
// contract (ErrNotExist). On an Object Lock bucket the server keeps the version behind a delete
// marker (see lock.go).
func (s *Store) Remove(ctx context.Context, h store.Handle) error {
	if err := store.Validate(h); err != nil {
		return fmt.Errorf("remove %s: %w", h, err)
	}
	if _, err := s.Stat(ctx, h); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	if err := s.cl.RemoveObject(ctx, s.o.Bucket, s.key(h), minio.RemoveObjectOptions{}); err != nil {
		return s.wrap("remove", h.String(), err)
	}
	return nil
}

// Close releases nothing: the HTTP transport's idle connections close on their own.
func (s *Store) Close() error { return nil }

// seconds is t as HEAD answers it: listings carry milliseconds, HEAD's Last-Modified header only
// whole seconds, and Stat and List must agree.
func seconds(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }
