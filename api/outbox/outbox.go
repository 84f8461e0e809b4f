package outbox

// Events the API enqueues. Payload fields are listed with each; payloads
// never hold contact details or secrets.
const (
	// EventVerifyEmail: payload {email, link_path}; Secret is the
	// verification token (sealed, AAD SecretAAD(dedupe key)).
	EventVerifyEmail = "account.verify_email"
	// EventTicketCreated: payload {ticket_id, subject, category, priority,
	// status, sla_due_at, awaiting_staff}.
	EventTicketCreated = "ticket.created"
	// EventTicketAssigned: payload {ticket_id, subject, status}; sent to the
	// consumer and (with role "staff") to the assignee.
	EventTicketAssigned = "ticket.assigned"
	// EventTicketStatusChanged: payload {ticket_id, subject, from, to, note}.
	EventTicketStatusChanged = "ticket.status_changed"
	// EventTicketComment: payload {ticket_id, subject, comment_id}.
	EventTicketComment = "ticket.comment"
)

// Message is one notification to enqueue.
type Message struct {
	TenantID int64
	UserID   int64  // recipient; 0 for none yet
	Event    string // one of the Event constants
	Channel  string // "", "email", "sms" or "push"; "" lets preferences decide
	Payload  map[string]any
	// Secret is a sealed value the message must carry (a one-time token),
	// sealed with AAD SecretAAD(DedupeKey); nil for none.
	Secret []byte
	// DedupeKey makes enqueueing idempotent: a second message with the
	// same key is dropped. Required when Secret is set.
	DedupeKey string
}

// SecretAAD is the additional data a Message's Secret is sealed with.
func SecretAAD(dedupeKey string) string { return "notification_outbox.secret:" + dedupeKey }
