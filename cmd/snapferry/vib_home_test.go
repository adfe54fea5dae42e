package main

import "testing"

func TestFromVIB(t *testing.T) {
	for exe, want := range map[string]bool{
		"/opt/snapferry/snapferry":                     true,
		"/opt/snapferry/./snapferry":                   true,
		"/vmfs/volumes/datastore1/snapferry/snapferry": false,
		"/opt/snapferry/bin/snapferry":                 false,
		"/usr/local/bin/snapferry":                     false,
	} {
		if got := fromVIB(exe); got != want {
			t.Errorf("fromVIB(%q) = %v, want %v", exe, got, want)
		}
	}
}
