//go:build tools

// Package main pins the chosen libraries in go.mod until every one is used by real code;
// delete this file once they all are.
package main

import (
	_ "github.com/gofrs/flock"
	_ "github.com/jotfs/fastcdc-go"
	_ "github.com/kevinburke/ssh_config"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/pkg/sftp"
	_ "github.com/robfig/cron/v3"
	_ "github.com/shirou/gopsutil/v4/process"
	_ "github.com/spf13/pflag"
	_ "golang.org/x/crypto/ssh"
	_ "golang.org/x/crypto/ssh/agent"
	_ "golang.org/x/crypto/ssh/knownhosts"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/term"
	_ "lukechampine.com/blake3"
)
