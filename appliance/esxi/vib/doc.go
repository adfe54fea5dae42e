// Package vib writes and reads VMware ESXi VIB packages, the only form in which ESXi 8 runs
// third-party binaries (execInstalledOnly). It is used by cmd/vibgen (make build), by the
// build's structural test, and by the ESXi simulator's `esxcli software vib install`.
//
// A VIB is a Unix ar archive whose members come in a fixed order:
//
//	descriptor.xml   what the package is: name, vendor, version, acceptance level, file list,
//	                 and per payload its size and checksums
//	sig.pkcs7        the signature; empty for a CommunitySupported package, so hosts install it
//	                 only with --no-sig-check and at host acceptance level CommunitySupported
//	PAYLOAD          a gzipped tar (type "tgz") of the files, paths relative to /
//
// A payload's descriptor carries three checksums, as VIBs built by VMware's vibauthor and by
// community builds (ghettoVCB) do: sha-256 of the gzipped bytes, and sha-256 and sha-1 of the
// uncompressed tar (verify-process="gunzip"); its size is that of the gzipped bytes.
//
// Build is reproducible: the same Package gives the same bytes (ar members with mtime 0, owner
// 0/0, mode 644; tar entries owned by root with the package's release date as mtime; a gzip
// header without name or time), so two builds of one commit can be compared byte for byte.
//
// Read checks everything a host checks before installing: member order, descriptor syntax,
// payload sizes and checksums, and that the payload holds exactly the files the descriptor lists
// under safe relative paths. It bounds what it reads, so a damaged or crafted file is an error,
// never a panic or an unbounded allocation (FuzzRead).
//
// Versions follow ESXi's "VERSION-RELEASE" form ("1.2.3-1.0.0"); Compare orders them the way the
// host decides whether an install is an upgrade, and VersionFromDescribe maps `git describe`
// output onto that form so every later commit orders later.
package vib
