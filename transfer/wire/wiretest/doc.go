// Package wiretest holds helpers for tests of code that speaks the wire protocol: a pair of
// real OS pipes standing in for an SSH session.
package wiretest
