// Package rgwtest gives tests a real S3 server: the single-node Ceph RGW of scripts/rgw.
//
// CI starts one for the whole run and names its env file in TEST_RGW_ENV (see .ci/run). A
// package whose tests need S3 calls Main from its TestMain: when no server is named it starts one
// with scripts/rgw/start.sh for the package's tests and stops it by PID afterwards. A package
// where few tests need S3 calls Lazy instead: the server starts only when a test asks for it. Without the
// Ceph packages the tests skip, or fail when CI is set (the project's rule for absent tools).
package rgwtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// EnvVar names the env file (KEY=VALUE lines) of a running RGW; errVar carries why Main could
// not start one, for the tests to report.
const (
	EnvVar = "TEST_RGW_ENV"
	errVar = "SNAPFERRY_RGW_START_ERROR"
	// lazyVar names the folder where Lazy lets the first Get start a server.
	lazyVar = "TEST_RGW_LAZY_DIR" // not SNAPFERRY_*: hooks pass those on
)

// Main runs the package's tests with an RGW: the one EnvVar names, else one it starts.
func Main(m *testing.M) int {
	if os.Getenv(EnvVar) != "" {
		return m.Run()
	}
	tmp, err := os.MkdirTemp("", "rgwtest-")
	if err != nil {
		os.Setenv(errVar, err.Error())
		return m.Run()
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "rgw")
	if err := start(dir); err != nil {
		os.Setenv(errVar, err.Error())
		return m.Run()
	}
	defer stop(dir)
	os.Setenv(EnvVar, filepath.Join(dir, "s3.env"))
	return m.Run()
}

// Lazy is Main for a package where few tests need S3 (cmd/snapferry): no server starts unless a
// test calls Get; the first Get starts one with scripts/rgw/start.sh and Lazy stops it by PID
// when the tests end. With EnvVar set (CI) that server is used and nothing starts.
func Lazy(m *testing.M) int {
	if os.Getenv(EnvVar) != "" {
		return m.Run()
	}
	tmp, err := os.MkdirTemp("", "rgwtest-")
	if err != nil {
		os.Setenv(errVar, err.Error())
		return m.Run()
	}
	defer os.RemoveAll(tmp)
	os.Setenv(lazyVar, tmp)
	dir := filepath.Join(tmp, "rgw")
	defer func() {
		if _, err := os.Stat(filepath.Join(dir, "pids")); err == nil { // started
			stop(dir)
		}
	}()
	return m.Run()
}

// startLazy starts the server of Lazy once (a file lock orders the tests that ask at once) and
// names its env file in EnvVar; on failure it names the reason in errVar.
func startLazy(tmp string) {
	lock, err := os.OpenFile(filepath.Join(tmp, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		os.Setenv(errVar, err.Error())
		return
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		os.Setenv(errVar, err.Error())
		return
	}
	dir := filepath.Join(tmp, "rgw")
	env := filepath.Join(dir, "s3.env")
	if _, err := os.Stat(env); err == nil {
		os.Setenv(EnvVar, env)
		return
	}
	if os.Getenv(errVar) != "" {
		return // an earlier try failed: do not start again for every test
	}
	if err := start(dir); err != nil {
		os.Setenv(errVar, err.Error())
		return
	}
	os.Setenv(EnvVar, env)
}

// start runs scripts/rgw/start.sh for a new server in dir.
func start(dir string) error {
	if _, err := exec.LookPath("radosgw"); err != nil {
		return fmt.Errorf("radosgw is not installed (apt-get install radosgw ceph-mon ceph-osd ceph-common)")
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if out, err := exec.Command(filepath.Join(root, "scripts/rgw/start.sh"), dir).CombinedOutput(); err != nil {
		return fmt.Errorf("scripts/rgw/start.sh: %v\n%s", err, out)
	}
	return nil
}

// stop runs scripts/rgw/stop.sh, which stops the daemons start recorded in dir by PID.
func stop(dir string) {
	root, err := moduleRoot()
	if err == nil {
		var out []byte
		if out, err = exec.Command(filepath.Join(root, "scripts/rgw/stop.sh"), dir).CombinedOutput(); err != nil {
			err = fmt.Errorf("%w\n%s", err, out)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rgwtest: stop: %v\n", err)
	}
}

// moduleRoot finds the folder holding go.mod above the working directory (a package's folder
// under go test).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("rgwtest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Server is a running RGW.
type Server struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
}

// Get returns the running RGW, skipping the test (failing it under CI) when there is none.
func Get(t testing.TB) Server {
	t.Helper()
	file := os.Getenv(EnvVar)
	if tmp := os.Getenv(lazyVar); file == "" && tmp != "" {
		startLazy(tmp)
		file = os.Getenv(EnvVar)
	}
	if file == "" {
		why := os.Getenv(errVar)
		if why == "" {
			why = "no RGW: call rgwtest.Main from TestMain or set " + EnvVar
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("rgwtest: %s (CI must provide it)", why)
		}
		t.Skipf("rgwtest: %s", why)
	}
	env, err := readEnv(file)
	if err != nil {
		t.Fatalf("rgwtest: %v", err)
	}
	s := Server{Endpoint: env["S3_HOSTPORT"], AccessKey: env["AWS_ACCESS_KEY_ID"], SecretKey: env["AWS_SECRET_ACCESS_KEY"]}
	if s.Endpoint == "" || s.AccessKey == "" {
		t.Fatalf("rgwtest: %s lacks S3_HOSTPORT or AWS_ACCESS_KEY_ID", file)
	}
	return s
}

func readEnv(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env, sc.Err()
}

// Credentials are the server's keys, for clients made in tests.
func (s Server) Credentials() *credentials.Credentials {
	return credentials.NewStaticV4(s.AccessKey, s.SecretKey, "")
}

// SetEnv puts the keys in the test's environment, where the store and the binary look for them.
func (s Server) SetEnv(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
}

// Client is a plain minio client on the server.
func (s Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	cl, err := minio.New(s.Endpoint, &minio.Options{Creds: s.Credentials(), BucketLookup: minio.BucketLookupPath, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// Bucket makes a bucket with a fresh name (with Object Lock if lock) and returns the name.
func (s Server) Bucket(t testing.TB, lock bool) string {
	t.Helper()
	name := NewBucketName(t)
	if err := s.Client(t).MakeBucket(context.Background(), name, minio.MakeBucketOptions{ObjectLocking: lock}); err != nil {
		t.Fatalf("rgwtest: make bucket %s: %v", name, err)
	}
	return name
}

// NewBucketName returns a bucket name no test used yet.
func NewBucketName(t testing.TB) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "t-" + hex.EncodeToString(b[:])
}
