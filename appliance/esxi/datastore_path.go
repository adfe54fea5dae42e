package esxi

import (
	"fmt"
	"strings"
)

// ParseDatastorePath splits "[datastore1 (4)] dir/x.vmx" into its datastore and relative path.
// Datastore names may hold spaces and parentheses but not ']'.
func ParseDatastorePath(s string) (datastore, rel string, err error) {
	if !strings.HasPrefix(s, "[") {
		return "", "", fmt.Errorf("datastore path %q: does not start with [datastore]", s)
	}
	end := strings.Index(s, "]")
	if end < 0 {
		return "", "", fmt.Errorf("datastore path %q: no closing ]", s)
	}
	datastore = s[1:end]
	rel = strings.TrimPrefix(s[end+1:], " ")
	if datastore == "" {
		return "", "", fmt.Errorf("datastore path %q: empty datastore name", s)
	}
	return datastore, rel, nil
}
