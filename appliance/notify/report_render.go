package notify

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"
	"text/tabwriter"
	"time"
)

// reportLines are the header facts both renderings show, in order.
func (r Report) reportLines() [][2]string {
	lines := [][2]string{{"Job", r.Job}, {"Result", upper(r.Result)}}
	if r.Host != "" {
		lines = append(lines, [2]string{"Host", r.Host})
	}
	if r.JobID != "" {
		lines = append(lines, [2]string{"Job id", r.JobID})
	}
	if !r.Start.IsZero() {
		lines = append(lines, [2]string{"Started", r.Start.Format("2006-01-02 15:04:05 MST")})
	}
	if !r.End.IsZero() {
		fin := r.End.Format("2006-01-02 15:04:05 MST")
		if !r.Start.IsZero() {
			fin += " (" + HumanDuration(r.End.Sub(r.Start)) + ")"
		}
		lines = append(lines, [2]string{"Finished", fin})
	}
	if r.Attempt > 1 {
		lines = append(lines, [2]string{"Attempt", fmt.Sprint(r.Attempt)})
	}
	return lines
}

// rowCells are the table columns of one row, shared by both renderings.
func rowCells(v VMRow) []string {
	res := string(v.Result)
	if v.Error != "" {
		res += ": " + v.Error
	}
	return []string{v.Name, v.Mode, HumanBytes(v.Size), HumanBytes(v.Changed), HumanBytes(v.Stored),
		HumanDuration(v.Duration), HumanSpeed(v.Speed()), res}
}

func (r Report) tableHeader() []string {
	return []string{r.rowNoun(), "Mode", "Size", "Changed", "Stored", "Time", "Speed", "Result"}
}

func (t Totals) summary() string {
	s := fmt.Sprintf("%s: %d snapshots, %s stored", t.Repository, t.Snapshots, HumanBytes(t.StoredBytes))
	if t.RawBytes > 0 {
		s += fmt.Sprintf(" (%s before deduplication and compression)", HumanBytes(t.RawBytes))
	}
	if t.FreeBytes >= 0 {
		s += ", " + HumanBytes(t.FreeBytes) + " free"
	}
	return s
}

// Text renders the plain-text part of the report.
func (r Report) Text() string {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, l := range r.reportLines() {
		fmt.Fprintf(tw, "%s:\t%s\n", l[0], l[1])
	}
	tw.Flush()
	if len(r.Errors) > 0 {
		b.WriteString("\nErrors:\n")
		for _, e := range r.Errors {
			b.WriteString("  - " + e + "\n")
		}
	}
	if len(r.Rows) > 0 {
		b.WriteString("\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(r.tableHeader(), "\t")))
		for _, v := range r.SortedRows() {
			fmt.Fprintln(tw, strings.Join(rowCells(v), "\t"))
		}
		tw.Flush()
	}
	if r.Totals != nil {
		b.WriteString("\nRepository " + r.Totals.summary() + "\n")
	}
	return b.String()
}

const htmlReport = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body style="font-family:sans-serif;font-size:14px">
<h2 style="color:{{.Color}}">{{.Subject}}</h2>
<table style="border-collapse:collapse">
{{range .Lines}}<tr><th style="text-align:left;padding-right:1em">{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table>
{{if .Errors}}<h3 style="color:#b00">Errors</h3>
<ul>{{range .Errors}}<li>{{.}}</li>{{end}}</ul>
{{end}}{{if .Rows}}<table style="border-collapse:collapse;margin-top:1em" border="1" cellpadding="4">
<tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr style="background:{{.Color}}">{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
{{end}}{{with .Totals}}<p>Repository {{.}}</p>
{{end}}</body></html>
`

type htmlRow struct {
	Color string
	Cells []string
}

func resultColor(r Result) string {
	switch r {
	case Success:
		return "#e6f4e6"
	case Partial:
		return "#fff4d6"
	}
	return "#fbe3e3"
}

// HTML renders the HTML part of the report; every value is escaped by html/template.
func (r Report) HTML() (string, error) {
	data := struct {
		Subject, Color string
		Lines          [][2]string
		Errors         []string
		Header         []string
		Rows           []htmlRow
		Totals         string
	}{Subject: r.Subject(), Lines: r.reportLines(), Errors: r.Errors, Header: r.tableHeader()}
	data.Color = map[Result]string{Success: "#070", Partial: "#a60"}[r.Result]
	if data.Color == "" {
		data.Color = "#b00"
	}
	for _, v := range r.SortedRows() {
		data.Rows = append(data.Rows, htmlRow{Color: resultColor(v.Result), Cells: rowCells(v)})
	}
	if r.Totals != nil {
		data.Totals = r.Totals.summary()
	}
	tmpl, err := template.New("report").Parse(htmlReport)
	if err != nil {
		return "", fmt.Errorf("render HTML report for job %s: %w", r.Job, err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		return "", fmt.Errorf("render HTML report for job %s: %w", r.Job, err)
	}
	return b.String(), nil
}

// formatDate is the RFC 5322 date of a message.
func formatDate(t time.Time) string { return t.Format(time.RFC1123Z) }
