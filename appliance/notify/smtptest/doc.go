// Package smtptest starts a real SMTP server for tests: Debian's python3-aiosmtpd running the
// handler script in testdata (embedded, so any package's tests can use it), on 127.0.0.1 with a
// free port, optionally with STARTTLS or implicit TLS and AUTH. Every message is saved to a
// folder with its envelope, for the test to read back.
//
// A missing python3-aiosmtpd skips the test locally and fails it when the CI environment
// variable is set, as the project's test rules require.
package smtptest
