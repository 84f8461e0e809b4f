package devsink

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net/http"
	"strings"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/notify"
)

func decodeTransfer(encoding string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, newlineStripper{r})
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// newlineStripper drops CR and LF so base64 lines decode as one stream.
type newlineStripper struct{ r io.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	for {
		k, err := n.r.Read(p)
		j := 0
		for _, b := range p[:k] {
			if b != '\r' && b != '\n' {
				p[j] = b
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// Sender is a log-only SMS or push provider for development: it records
// the message in the Log and logs its recipient and title.
type Sender struct {
	ch  alerts.Channel
	log *Log
	lg  *slog.Logger
}

var _ notify.Sender = (*Sender)(nil)

// NewSender returns a log-only sender for channel ch.
func NewSender(ch alerts.Channel, log *Log, lg *slog.Logger) *Sender {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Sender{ch: ch, log: log, lg: lg}
}

// Provider implements notify.Sender.
func (s *Sender) Provider() string { return "log" }

// Channel implements notify.Sender.
func (s *Sender) Channel() alerts.Channel { return s.ch }

// Send implements notify.Sender.
func (s *Sender) Send(_ context.Context, m *notify.Message) (notify.Receipt, bool, error) {
	c := Captured{Channel: string(s.ch), Provider: "log", Data: m.Data}
	switch s.ch {
	case alerts.ChannelSMS:
		c.To, c.Text = []string{m.To.Phone}, m.SMS
		c.Subject = m.SMS
	case alerts.ChannelPush:
		c.To, c.Subject, c.Text = []string{notify.MaskPhone(m.To.Token)}, m.PushTitle, m.PushBody
	default:
		return notify.Receipt{}, false, fmt.Errorf("devsink: no log sender for %s", s.ch)
	}
	c = s.log.Add(c)
	to := c.To[0]
	if s.ch == alerts.ChannelSMS {
		to = notify.MaskPhone(to)
	}
	s.lg.Info("dev "+string(s.ch)+" captured", "to", to, "title", c.Subject, "event", m.Event, "seq", c.Seq)
	return notify.Receipt{MessageID: fmt.Sprintf("log-%d", c.Seq)}, false, nil
}

// Handler serves the captured messages: JSON at the path (newest first,
// ?channel= filters), an HTML page with ?format=html, one message's HTML
// body at ?seq=N&part=html, and its first attachment at ?seq=N&part=file.
func Handler(log *Log) http.Handler {
	page := template.Must(template.New("p").Parse(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>meterd dev notifications</title>
<style>body{font-family:sans-serif;margin:20px}td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}</style></head>
<body><h1>Notifications captured by meterd dev</h1><p>{{len .}} kept, newest first. JSON: <a href="?">?</a></p>
<table><tr><th>#</th><th>at</th><th>channel</th><th>to</th><th>subject / title</th><th>body</th></tr>
{{range .}}<tr><td>{{.Seq}}</td><td>{{.At.Format "15:04:05"}}</td><td>{{.Channel}}</td><td>{{range .To}}{{.}} {{end}}</td><td>{{.Subject}}</td>
<td>{{if .HTML}}<a href="?seq={{.Seq}}&part=html">HTML</a> {{end}}{{range .Attachments}}<a href="?seq={{$.Seq}}&part=file">{{.Name}}</a> {{end}}<pre style="white-space:pre-wrap;margin:0">{{.Text}}</pre></td></tr>{{end}}
</table></body></html>`))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		all := log.All()
		for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
			all[i], all[j] = all[j], all[i]
		}
		q := r.URL.Query()
		if ch := q.Get("channel"); ch != "" {
			kept := all[:0]
			for _, c := range all {
				if c.Channel == ch {
					kept = append(kept, c)
				}
			}
			all = kept
		}
		if seq := q.Get("seq"); seq != "" {
			for _, c := range all {
				if fmt.Sprint(c.Seq) != seq {
					continue
				}
				switch q.Get("part") {
				case "html":
					w.Header().Set("Content-Type", "text/html; charset=utf-8")
					_, _ = io.WriteString(w, c.HTML)
				case "file":
					if len(c.Attachments) == 0 {
						http.NotFound(w, r)
						return
					}
					w.Header().Set("Content-Type", c.Attachments[0].ContentType)
					_, _ = w.Write(c.Attachments[0].Data)
				default:
					w.Header().Set("Content-Type", "application/json")
					_ = json.NewEncoder(w).Encode(c)
				}
				return
			}
			http.NotFound(w, r)
			return
		}
		if q.Get("format") == "html" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_ = page.Execute(w, all)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"messages": all})
	})
}
