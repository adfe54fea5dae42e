package main

import "testing"

// TestResumeAfterKillOverSFTP: TestResumeAfterKillOverSSH on an sftp:// repository (the
// repository logic runs here, the files go through sshd's SFTP server, and packs are published
// by rename from temp files): the rerun after each SIGKILL sends less than 10% of what the
// killed run had stored, and check over sftp:// counts the temp file a kill mid-pack left.
func TestResumeAfterKillOverSFTP(t *testing.T) { resumeAfterKill(t, "sftp") }
