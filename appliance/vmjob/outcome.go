package vmjob

// Outcome classifies a run of VM backups for the CLI's exit status (shared/cli.md).
type Outcome int

const (
	AllDone Outcome = iota // every VM backed up completely: exit 0
	Partial                // some VMs failed or skipped disks, something was committed: exit 3
	Failed                 // nothing was backed up: exit 1
)

// Summarize tells the outcome of a run. A VM committed with a cleanup error (our snapshot could
// not be removed) counts as partial: its data is safe, but the host needs attention.
func Summarize(results []Result) Outcome {
	committed, clean := 0, 0
	for _, r := range results {
		if r.Committed {
			committed++
		}
		if r.Committed && r.Err == nil && !r.Partial {
			clean++
		}
	}
	switch {
	case len(results) > 0 && clean == len(results):
		return AllDone
	case committed > 0:
		return Partial
	}
	return Failed
}
