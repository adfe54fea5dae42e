package cron

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// FirewallRuleName is the file name of snapferry's ESXi firewall rule (outbound SMTP).
const FirewallRuleName = "snapferry-smtp.xml"

// DefaultFirewallDir is where ESXi reads custom firewall rule files.
const DefaultFirewallDir = "/etc/vmware/firewall"

// FirewallRuleXML returns the ESXi firewall rule that opens outbound TCP to the SMTP ports.
// scripts/firewall/snapferry-smtp.xml holds the same text for a manual install; a test keeps the
// two identical.
func FirewallRuleXML() string {
	var b strings.Builder
	b.WriteString("<!-- snapferry: outbound SMTP for e-mail reports (ports 25, 465, 587).\n")
	b.WriteString("     Copy to /etc/vmware/firewall/" + FirewallRuleName + ", then run\n")
	b.WriteString("     esxcli network firewall refresh. /etc is rebuilt at boot; to keep\n")
	b.WriteString("     the rule, let snapferry add it to local.sh (docs/scheduling.md). -->\n")
	b.WriteString("<ConfigRoot>\n")
	b.WriteString("  <service id=\"1000\">\n")
	b.WriteString("    <id>snapferrySMTP</id>\n")
	// SMTP, SMTPS (implicit TLS), submission.
	for i, p := range []int{25, 465, 587} {
		fmt.Fprintf(&b, "    <rule id=\"%04d\">\n", i)
		b.WriteString("      <direction>outbound</direction>\n")
		b.WriteString("      <protocol>tcp</protocol>\n")
		b.WriteString("      <porttype>dst</porttype>\n")
		fmt.Fprintf(&b, "      <port>%d</port>\n", p)
		b.WriteString("    </rule>\n")
	}
	b.WriteString("    <enabled>true</enabled>\n")
	b.WriteString("    <required>false</required>\n")
	b.WriteString("  </service>\n")
	b.WriteString("</ConfigRoot>\n")
	return b.String()
}

// firewallHeredocEnd ends the here-document in local.sh; it never occurs in the rule text.
const firewallHeredocEnd = "SNAPFERRY_RULE_EOF"

// FirewallStanzaLines returns the local.sh lines that re-create the firewall rule in dir at boot
// and make the firewall load it.
func FirewallStanzaLines(dir string) []string {
	path := filepath.Join(dir, FirewallRuleName)
	lines := []string{"cat > " + QuoteShellArg(path) + " <<'" + firewallHeredocEnd + "'"}
	lines = append(lines, strings.Split(strings.TrimSuffix(FirewallRuleXML(), "\n"), "\n")...)
	return append(lines, firewallHeredocEnd, "esxcli network firewall refresh")
}

// InstallFirewallRule writes the rule into dir now and asks the firewall to reload, for the
// current boot (FirewallStanzaLines covers the next ones).
func InstallFirewallRule(ctx context.Context, dir string, run CommandRunner) error {
	path := filepath.Join(dir, FirewallRuleName)
	if err := writeFileAtomic(path, []byte(FirewallRuleXML()), 0o644); err != nil {
		return fmt.Errorf("install firewall rule: %w", err)
	}
	if _, err := run(ctx, "esxcli", "network", "firewall", "refresh"); err != nil {
		return fmt.Errorf("install firewall rule %s: reload firewall: %w", path, err)
	}
	return nil
}
