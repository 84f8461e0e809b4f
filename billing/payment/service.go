package payment

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/billing"
)

// Config configures the payment service.
type Config struct {
	// Routes names the provider that takes each method when a request
	// names none. Default: the first provider (in the order given to New)
	// that supports the method.
	Routes map[Method]string
	// KeyLease is how long a request holds its Idempotency-Key while it
	// talks to the provider; a retry after that resumes the work. Default
	// 30 s.
	KeyLease time.Duration
	// KeyRetention is how long completed keys are kept (and replayed).
	// Default 72 h (Stripe keeps keys at least 24 h).
	KeyRetention time.Duration
	// PendingAfter is the age after which reconciliation asks the provider
	// about an open payment (and again after each such interval). Default
	// 15 min.
	PendingAfter time.Duration
	// AbandonAfter is the age after which an open payment the payer never
	// paid expires (an abandoned checkout). Default 24 h.
	AbandonAfter time.Duration
	// ReconcileBatch is the most payments (and refunds) one reconciliation
	// run looks at. Default 200.
	ReconcileBatch int
	// MaxAdvance is the largest overpayment accepted (carried forward as
	// advance), in the bill's currency. Default 100000.
	MaxAdvance decimal.Decimal
	// DefaultReturnURL is where payers return after a redirect checkout
	// when a request names no return URL. Default "/".
	DefaultReturnURL string
	Logger           *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	for _, d := range []time.Duration{c.KeyLease, c.KeyRetention, c.PendingAfter, c.AbandonAfter} {
		if d < 0 {
			errs = append(errs, errors.New("payment: durations must not be negative"))
			break
		}
	}
	if c.ReconcileBatch < 0 {
		errs = append(errs, errors.New("payment: reconcile batch must not be negative"))
	}
	if c.MaxAdvance.IsNegative() {
		errs = append(errs, errors.New("payment: max advance must not be negative"))
	}
	for m := range c.Routes {
		if _, err := ParseMethod(string(m)); err != nil {
			errs = append(errs, fmt.Errorf("payment: route for %q: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.KeyLease == 0 {
		c.KeyLease = 30 * time.Second
	}
	if c.KeyRetention == 0 {
		c.KeyRetention = 72 * time.Hour
	}
	if c.PendingAfter == 0 {
		c.PendingAfter = 15 * time.Minute
	}
	if c.AbandonAfter == 0 {
		c.AbandonAfter = 24 * time.Hour
	}
	if c.ReconcileBatch == 0 {
		c.ReconcileBatch = 200
	}
	if c.MaxAdvance.IsZero() {
		c.MaxAdvance = decimal.NewFromInt(100000)
	}
	if c.DefaultReturnURL == "" {
		c.DefaultReturnURL = "/"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Caller is who makes a request, and the records it may reach.
type Caller struct {
	TenantID int64
	UserID   int64
	Role     string
	// OwnerOnly limits the caller to records of bills it owns (consumers).
	OwnerOnly bool
	Address   string
	RequestID string
}

// Owner returns the owner the caller is limited to, 0 for none.
func (c Caller) Owner() int64 {
	if c.OwnerOnly {
		return c.UserID
	}
	return 0
}

// Sealer encrypts tokens at rest (cmd passes the API's field keyring).
type Sealer interface {
	Seal(plaintext []byte, aad string) ([]byte, error)
	Open(sealed []byte, aad string) ([]byte, error)
}

// Bill is a bill as a payment sees it.
type Bill struct {
	ID             int64
	TenantID       int64
	TenantCode     string
	ConnectionID   int64
	ConsumerUserID int64
	Number         string
	ConsumerCode   string
	Currency       string
	Status         string // issued, partially_paid, paid, overdue, cancelled
	Total          decimal.Decimal
	MinimumPayable decimal.Decimal
	// Outstanding is what the connection owes now up to this bill's
	// period (its demand and the earlier ones), after every payment.
	Outstanding decimal.Decimal
}

// Operations that take an Idempotency-Key.
const (
	OpCreate = "payment.create"
	OpRefund = "payment.refund"
)

// Key is an Idempotency-Key of one caller, with the request it came with.
type Key struct {
	TenantID  int64
	UserID    int64
	Key       string
	Operation string
	Hash      []byte // SHA-256 of the canonical request
}

// KeyRecord is a stored key.
type KeyRecord struct {
	Operation  string
	Hash       []byte
	ResourceID int64
	Completed  bool
	Response   json.RawMessage // the snapshot to replay, when completed
}

// NewPayment is a payment to create with its key.
type NewPayment struct {
	Bill          Bill
	PayerUserID   int64
	Provider      string
	Method        Method
	Amount        decimal.Decimal
	AmountMinor   int64
	SavedMethodID int64
	SaveMethod    bool
	ReturnURL     string
}

// Claim is what ClaimPayment found or made: the payment to work on, or the
// snapshot to replay.
type Claim struct {
	Payment Payment
	Replay  *Payment
}

// NewRefund is a refund to create with its key. A zero Amount refunds
// everything not refunded yet.
type NewRefund struct {
	TenantID  int64
	PaymentID int64
	Amount    decimal.Decimal
	Reason    string
}

// RefundClaim is what ClaimRefund found or made.
type RefundClaim struct {
	Refund  Refund
	Payment Payment
	Replay  *Refund
}

// Outcome is what storing a provider event did.
type Outcome struct {
	EventID   string
	Result    string // applied, ignored, unmatched, anomaly, duplicate
	PaymentID int64
	Status    Status // the payment's state after it ("" when unmatched)
	Note      string
}

// Event sources.
const (
	SourceWebhook        = "webhook"
	SourceReconciliation = "reconciliation"
	SourceCheckout       = "checkout"
	SourceCreate         = "create"
)

// Filter selects payments to list, newest first.
type Filter struct {
	TenantID    int64
	OwnerUserID int64 // 0: any consumer
	BillID      int64 // 0: any
	Status      Status
	BeforeID    int64 // keyset: payments with id < BeforeID; 0: newest
	Limit       int
}

// NewMethod is a saved payment method to add: the provider's token (from
// its tokenization, never a card number), brand and last four digits.
type NewMethod struct {
	Provider string
	Method   Method
	Token    string
	Brand    string
	Last4    string
	Label    string
}

// Store is the service's persistence port (billing/payment/postgres).
// Methods that change money state do it in one transaction with the
// ledger posting, the receipt, the outbox message and the audit entry.
type Store interface {
	// PayableBill returns a bill of the tenant (of ownerUserID when not
	// 0) with its outstanding amount; ErrBillNotFound otherwise.
	PayableBill(ctx context.Context, tenantID, ownerUserID, billID int64) (Bill, error)
	// LookupKey returns a stored key.
	LookupKey(ctx context.Context, k Key) (KeyRecord, bool, error)
	// ClaimPayment claims k and creates the payment in one transaction,
	// or finds the key: a completed key gives its snapshot (Replay); a
	// started key whose lease ended is taken over (its payment returned
	// to resume); one still leased is ErrIdempotencyInUse; a different
	// request is ErrIdempotencyMismatch.
	ClaimPayment(ctx context.Context, k Key, lease time.Duration, p NewPayment, c Caller) (Claim, error)
	// CompletePayment records the provider's order (and applies its
	// immediate state, if any), stores the payment's snapshot under k and
	// returns it.
	CompletePayment(ctx context.Context, k Key, paymentID int64, o Order) (Payment, error)
	// ReleaseKey ends k's lease so that a retry may resume at once.
	ReleaseKey(ctx context.Context, k Key) error
	Payment(ctx context.Context, tenantID, ownerUserID, id int64) (Payment, error)
	Payments(ctx context.Context, f Filter) ([]Payment, error)
	// ApplyEvent stores a provider event once (by provider and id) and
	// applies it in the same transaction: the payment's transition and,
	// for a capture, the ledger posting, receipt and notification; for a
	// processed refund, the ledger reversal.
	ApplyEvent(ctx context.Context, ev Event, source string) (Outcome, error)
	// ClaimRefund claims k and creates the refund (checking what is left
	// to refund) in one transaction, audited; or finds the key as
	// ClaimPayment does.
	ClaimRefund(ctx context.Context, k Key, lease time.Duration, r NewRefund, c Caller) (RefundClaim, error)
	// CompleteRefund records the provider's answer (applying a processed
	// refund to the ledger) and, when k is not zero, stores the refund's
	// snapshot under k.
	CompleteRefund(ctx context.Context, k Key, refundID int64, st RefundState) (Refund, error)
	Refunds(ctx context.Context, tenantID, ownerUserID, paymentID int64) ([]Refund, error)
	Receipt(ctx context.Context, tenantID, ownerUserID, paymentID int64) (Receipt, error)
	// OpenPayments returns payments still open, created before
	// olderThan and not checked since then (tenantID 0: every tenant).
	OpenPayments(ctx context.Context, tenantID int64, olderThan time.Time, limit int) ([]Payment, error)
	// OpenRefunds returns refunds created or pending since before
	// olderThan, with their payments.
	OpenRefunds(ctx context.Context, tenantID int64, olderThan time.Time, limit int) ([]RefundClaim, error)
	MarkChecked(ctx context.Context, paymentID int64) error
	StartReconciliation(ctx context.Context, tenantID int64, trigger string, c *Caller) (Reconciliation, error)
	FinishReconciliation(ctx context.Context, r Reconciliation) error
	Reconciliations(ctx context.Context, tenantID int64, limit int) ([]Reconciliation, error)
	// AddMethod seals the token and stores the method, audited.
	AddMethod(ctx context.Context, c Caller, m NewMethod) (SavedMethod, error)
	Methods(ctx context.Context, tenantID, userID int64) ([]SavedMethod, error)
	// MethodToken returns a saved method of the user with its token
	// opened.
	MethodToken(ctx context.Context, tenantID, userID, id int64) (SavedMethod, string, error)
	RemoveMethod(ctx context.Context, c Caller, id int64) error
	// PurgeKeys deletes idempotency keys created before before.
	PurgeKeys(ctx context.Context, before time.Time) (int64, error)
}

// Service runs the payment flows.
type Service struct {
	cfg       Config
	store     Store
	providers map[string]Provider
	order     []string
}

// New returns the service over store with providers (in order of
// preference).
func New(store Store, providers []Provider, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if len(providers) == 0 {
		return nil, errors.New("payment: no provider configured")
	}
	s := &Service{cfg: cfg, store: store, providers: map[string]Provider{}}
	for _, p := range providers {
		if _, dup := s.providers[p.Name()]; dup {
			return nil, fmt.Errorf("payment: provider %s given twice", p.Name())
		}
		s.providers[p.Name()] = p
		s.order = append(s.order, p.Name())
	}
	for m, name := range cfg.Routes {
		p, ok := s.providers[name]
		if !ok {
			return nil, fmt.Errorf("payment: route %s → %s: no such provider", m, name)
		}
		if !p.Supports(m) {
			return nil, fmt.Errorf("payment: route %s → %s: the provider does not take %s", m, name, m)
		}
	}
	return s, nil
}

// Providers returns the configured providers' names, in preference order.
func (s *Service) Providers() []string { return append([]string(nil), s.order...) }

// KeyRetention is how long completed idempotency keys are kept.
func (s *Service) KeyRetention() time.Duration { return s.cfg.KeyRetention }

// providerFor picks the provider of a request.
func (s *Service) providerFor(name string, m Method) (Provider, error) {
	if name != "" {
		p, ok := s.providers[name]
		if !ok {
			return nil, invalid("provider", fmt.Sprintf("%q is not a configured provider (%s)", name, strings.Join(s.order, ", ")))
		}
		if !p.Supports(m) {
			return nil, invalid("method", fmt.Sprintf("%s does not take %s payments", name, m))
		}
		return p, nil
	}
	if r, ok := s.cfg.Routes[m]; ok {
		return s.providers[r], nil
	}
	for _, n := range s.order {
		if s.providers[n].Supports(m) {
			return s.providers[n], nil
		}
	}
	return nil, invalid("method", fmt.Sprintf("no configured provider takes %s payments", m))
}

// CreateRequest is a payment a caller asks for.
type CreateRequest struct {
	BillID        int64
	Amount        decimal.Decimal
	Method        Method
	Provider      string // "": the configured one for the method
	SavedMethodID int64
	SaveMethod    bool
	ReturnURL     string
}

// hash is the SHA-256 of the canonical request: the same request written
// differently (key order, "100" or "100.00") is the same request.
func (r CreateRequest) hash() []byte {
	b, _ := json.Marshal([]any{OpCreate, r.BillID, r.Amount.String(), r.Method, r.Provider, r.SavedMethodID, r.SaveMethod, r.ReturnURL})
	h := sha256.Sum256(b)
	return h[:]
}

// ValidateKey checks an Idempotency-Key: 1 to 255 printable ASCII
// characters.
func ValidateKey(key string) error {
	if key == "" {
		return invalid("Idempotency-Key", "the header is required on this request (a UUID per payment attempt)")
	}
	if len(key) > 255 {
		return invalid("Idempotency-Key", "must be at most 255 characters")
	}
	for _, r := range key {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return invalid("Idempotency-Key", "must be printable ASCII")
		}
	}
	return nil
}

func sameRequest(rec KeyRecord, k Key) bool {
	return rec.Operation == k.Operation && string(rec.Hash) == string(k.Hash)
}

// Create starts a payment of a bill under an Idempotency-Key and returns
// it with the payer's next action. The first completed response for a key
// is replayed for every retry (replayed true); a different request with
// the key is ErrIdempotencyMismatch; a concurrent one ErrIdempotencyInUse.
// Validation failures store nothing, so a corrected retry with the same
// key is fine. A provider failure releases the key: a retry resumes the
// same payment, and the provider's idempotency (the payment's reference)
// keeps it to one order.
func (s *Service) Create(ctx context.Context, c Caller, key string, req CreateRequest) (Payment, bool, error) {
	if err := ValidateKey(key); err != nil {
		return Payment{}, false, err
	}
	k := Key{TenantID: c.TenantID, UserID: c.UserID, Key: key, Operation: OpCreate, Hash: req.hash()}
	rec, found, err := s.store.LookupKey(ctx, k)
	if err != nil {
		return Payment{}, false, err
	}
	if found {
		if !sameRequest(rec, k) {
			return Payment{}, false, ErrIdempotencyMismatch
		}
		if rec.Completed {
			p, err := snapshot[Payment](rec.Response)
			return p, true, err
		}
	}
	var np NewPayment
	if !found {
		if np, err = s.validate(ctx, c, req); err != nil {
			return Payment{}, false, err
		}
	} else {
		np = NewPayment{PayerUserID: c.UserID} // resuming: the stored payment is used
	}
	claim, err := s.store.ClaimPayment(ctx, k, s.cfg.KeyLease, np, c)
	if err != nil {
		return Payment{}, false, err
	}
	if claim.Replay != nil {
		return *claim.Replay, true, nil
	}
	p := claim.Payment
	var order Order
	if p.Status == StatusCreated && p.ProviderOrderID == "" {
		prov, ok := s.providers[p.Provider]
		if !ok {
			_ = s.store.ReleaseKey(ctx, k)
			return Payment{}, false, fmt.Errorf("payment %d: %w %q", p.ID, ErrUnknownProvider, p.Provider)
		}
		or := OrderRequest{PaymentID: p.ID, Reference: p.ProviderReference(), AmountMinor: p.AmountMinor, Currency: p.Currency, Method: p.Method,
			Description: "Bill " + p.BillNumber, BillNumber: p.BillNumber, Consumer: p.ConsumerCode, SaveMethod: p.SaveMethod, ReturnURL: p.ReturnURL}
		if p.SavedMethodID != 0 {
			_, tok, err := s.store.MethodToken(ctx, p.TenantID, p.PayerUserID, p.SavedMethodID)
			if err != nil {
				_ = s.store.ReleaseKey(ctx, k)
				return Payment{}, false, err
			}
			or.SavedToken = tok
		}
		order, err = prov.CreateOrder(ctx, or)
		if err != nil {
			if rerr := s.store.ReleaseKey(ctx, k); rerr != nil {
				s.cfg.Logger.Warn("release idempotency key", "payment_id", p.ID, "err", rerr)
			}
			return Payment{}, false, fmt.Errorf("payment %d: create order: %w", p.ID, err)
		}
	}
	done, err := s.store.CompletePayment(ctx, k, p.ID, order)
	if err != nil {
		return Payment{}, false, err
	}
	return done, false, nil
}

// validate checks a new payment request against its bill and returns the
// payment to create.
func (s *Service) validate(ctx context.Context, c Caller, req CreateRequest) (NewPayment, error) {
	v := newValidation()
	if req.BillID <= 0 {
		v.add("bill_id", "must be a positive integer")
	}
	if !req.Amount.IsPositive() {
		v.add("amount", "must be a positive amount")
	}
	if _, err := ParseMethod(string(req.Method)); err != nil {
		v.add("method", "must be one of card, netbanking, wallet, upi")
	}
	if req.ReturnURL != "" {
		if u, err := url.Parse(req.ReturnURL); err != nil || len(req.ReturnURL) > 2000 || (u.Scheme != "" && u.Scheme != "https" && u.Scheme != "http") {
			v.add("return_url", "must be an http(s) URL or a path")
		}
	}
	if err := v.err(); err != nil {
		return NewPayment{}, err
	}
	prov, err := s.providerFor(req.Provider, req.Method)
	if err != nil {
		return NewPayment{}, err
	}
	bill, err := s.store.PayableBill(ctx, c.TenantID, c.Owner(), req.BillID)
	if err != nil {
		return NewPayment{}, err
	}
	if bill.Status == "cancelled" {
		return NewPayment{}, fmt.Errorf("%w: bill %s is cancelled; pay its replacement", ErrConflict, bill.Number)
	}
	if !bill.Outstanding.IsPositive() {
		return NewPayment{}, fmt.Errorf("%w: bill %s is settled: nothing is outstanding", ErrConflict, bill.Number)
	}
	least := decimal.Min(bill.MinimumPayable, bill.Outstanding)
	switch {
	case req.Amount.LessThan(least) && least.Equal(bill.Outstanding):
		v.add("amount", fmt.Sprintf("part payments are not allowed for this bill: pay %s", bill.Outstanding.StringFixed(2)))
	case req.Amount.LessThan(least):
		v.add("amount", fmt.Sprintf("must be at least the minimum payable %s", least.StringFixed(2)))
	case req.Amount.GreaterThan(bill.Outstanding.Add(s.cfg.MaxAdvance)):
		v.add("amount", fmt.Sprintf("must not exceed the amount due %s by more than %s", bill.Outstanding.StringFixed(2), s.cfg.MaxAdvance.StringFixed(2)))
	}
	minor, err := ToMinor(req.Amount, bill.Currency)
	if err != nil {
		v.add("amount", fmt.Sprintf("must have at most %d decimal places", MinorExponent(bill.Currency)))
	}
	if req.SavedMethodID != 0 {
		m, _, err := s.store.MethodToken(ctx, c.TenantID, c.UserID, req.SavedMethodID)
		switch {
		case errors.Is(err, ErrNotFound):
			v.add("saved_method_id", "is not one of your saved methods")
		case err != nil:
			return NewPayment{}, err
		case m.Provider != prov.Name():
			v.add("saved_method_id", fmt.Sprintf("is saved with %s, not %s", m.Provider, prov.Name()))
		case m.Method != req.Method:
			v.add("saved_method_id", fmt.Sprintf("is a %s method, not %s", m.Method, req.Method))
		}
	}
	if err := v.err(); err != nil {
		return NewPayment{}, err
	}
	ret := req.ReturnURL
	if ret == "" {
		ret = s.cfg.DefaultReturnURL
	}
	return NewPayment{Bill: bill, PayerUserID: c.UserID, Provider: prov.Name(), Method: req.Method, Amount: req.Amount, AmountMinor: minor,
		SavedMethodID: req.SavedMethodID, SaveMethod: req.SaveMethod, ReturnURL: ret}, nil
}

func snapshot[T any](raw json.RawMessage) (T, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("payment: stored response: %w", err)
	}
	return v, nil
}

// Payment returns a payment in the caller's scope.
func (s *Service) Payment(ctx context.Context, c Caller, id int64) (Payment, error) {
	return s.store.Payment(ctx, c.TenantID, c.Owner(), id)
}

// Payments lists payments in the caller's scope, newest first.
func (s *Service) Payments(ctx context.Context, c Caller, f Filter) ([]Payment, error) {
	f.TenantID, f.OwnerUserID = c.TenantID, c.Owner()
	if f.Status != "" {
		switch f.Status {
		case StatusCreated, StatusPending, StatusAuthorized, StatusFailed, StatusExpired, StatusCaptured, StatusRefunded:
		default:
			return nil, invalid("status", "is not a payment status")
		}
	}
	return s.store.Payments(ctx, f)
}

// Refunds lists a payment's refunds.
func (s *Service) Refunds(ctx context.Context, c Caller, paymentID int64) ([]Refund, error) {
	return s.store.Refunds(ctx, c.TenantID, c.Owner(), paymentID)
}

// Receipt returns the receipt of a captured payment in the caller's scope
// (ErrNotFound before the capture).
func (s *Service) Receipt(ctx context.Context, c Caller, paymentID int64) (Receipt, error) {
	return s.store.Receipt(ctx, c.TenantID, c.Owner(), paymentID)
}

// HandleWebhook verifies and applies a provider's webhook delivery: the
// signature is checked over the raw body before anything is parsed or
// stored; the event is stored once and applied in the same transaction.
func (s *Service) HandleWebhook(ctx context.Context, provider string, h Header, body []byte) (Outcome, error) {
	p, ok := s.providers[provider]
	if !ok {
		return Outcome{}, fmt.Errorf("%w %q", ErrUnknownProvider, provider)
	}
	ev, err := p.ParseWebhook(h, body, s.cfg.Now())
	if err != nil {
		return Outcome{}, fmt.Errorf("%s webhook: %w", provider, err)
	}
	ev.Provider = p.Name()
	ev.Payload = MaskCardNumbers(body)
	return s.store.ApplyEvent(ctx, ev, SourceWebhook)
}

// Confirm handles a checkout callback: the callback's signature is checked
// against the order meterd stored, then the provider is asked for the
// payment's state, which is applied like an event (the money is
// recognised only when the provider says it is captured).
func (s *Service) Confirm(ctx context.Context, c Caller, paymentID int64, fields map[string]string) (Payment, error) {
	p, err := s.store.Payment(ctx, c.TenantID, c.Owner(), paymentID)
	if err != nil {
		return Payment{}, err
	}
	if p.ProviderOrderID == "" {
		return Payment{}, fmt.Errorf("%w: payment %d has no provider order yet", ErrConflict, p.ID)
	}
	prov, ok := s.providers[p.Provider]
	if !ok {
		return Payment{}, fmt.Errorf("%w %q", ErrUnknownProvider, p.Provider)
	}
	if _, err := prov.VerifyCheckout(p.ProviderOrderID, fields); err != nil {
		return Payment{}, fmt.Errorf("payment %d: checkout callback: %w", p.ID, err)
	}
	st, err := prov.FetchOrder(ctx, p.ProviderOrderID)
	if err != nil {
		return Payment{}, fmt.Errorf("payment %d: fetch order: %w", p.ID, err)
	}
	if st.Kind != EventPending {
		if _, err := s.store.ApplyEvent(ctx, StateEvent(prov.Name(), st, SourceCheckout), SourceCheckout); err != nil {
			return Payment{}, err
		}
	}
	return s.store.Payment(ctx, c.TenantID, c.Owner(), paymentID)
}

// RefundInput is a refund staff ask for: a zero Amount refunds all that
// was not refunded yet.
type RefundInput struct {
	Amount decimal.Decimal
	Reason string
}

func (r RefundInput) hash(paymentID int64) []byte {
	b, _ := json.Marshal([]any{OpRefund, paymentID, r.Amount.String(), r.Reason})
	h := sha256.Sum256(b)
	return h[:]
}

// Refund refunds (part of) a captured payment under an Idempotency-Key,
// with a reason (audited). The ledger reverses the payment's posting when
// the provider reports the refund processed (at once or later, by webhook
// or reconciliation). A provider failure leaves the refund claimed: a
// retry with the key, or the next reconciliation, asks again with the same
// reference, so the provider refunds once.
func (s *Service) Refund(ctx context.Context, c Caller, key string, paymentID int64, in RefundInput) (Refund, bool, error) {
	if _, err := s.store.Payment(ctx, c.TenantID, c.Owner(), paymentID); err != nil {
		return Refund{}, false, err
	}
	if err := ValidateKey(key); err != nil {
		return Refund{}, false, err
	}
	v := newValidation()
	in.Reason = strings.TrimSpace(in.Reason)
	if in.Reason == "" || len(in.Reason) > 500 {
		v.add("reason", "is required (at most 500 characters)")
	}
	if in.Amount.IsNegative() {
		v.add("amount", "must be positive (or absent: refund the rest)")
	}
	if err := v.err(); err != nil {
		return Refund{}, false, err
	}
	k := Key{TenantID: c.TenantID, UserID: c.UserID, Key: key, Operation: OpRefund, Hash: in.hash(paymentID)}
	rec, found, err := s.store.LookupKey(ctx, k)
	if err != nil {
		return Refund{}, false, err
	}
	if found {
		if !sameRequest(rec, k) {
			return Refund{}, false, ErrIdempotencyMismatch
		}
		if rec.Completed {
			r, err := snapshot[Refund](rec.Response)
			return r, true, err
		}
	}
	claim, err := s.store.ClaimRefund(ctx, k, s.cfg.KeyLease, NewRefund{TenantID: c.TenantID, PaymentID: paymentID, Amount: in.Amount, Reason: in.Reason}, c)
	if err != nil {
		return Refund{}, false, err
	}
	if claim.Replay != nil {
		return *claim.Replay, true, nil
	}
	st, err := s.askRefund(ctx, claim)
	if errors.Is(err, ErrProviderUnavailable) {
		if rerr := s.store.ReleaseKey(ctx, k); rerr != nil {
			s.cfg.Logger.Warn("release idempotency key", "refund_id", claim.Refund.ID, "err", rerr)
		}
		return Refund{}, false, fmt.Errorf("refund %d: %w", claim.Refund.ID, err)
	}
	if err != nil {
		// Refused for good: record it; a new request is needed.
		s.cfg.Logger.Warn("refund refused by provider", "refund_id", claim.Refund.ID, "err", err)
		st = RefundState{Status: RefundFailed, FailureReason: "refused by the payment provider"}
	}
	r, err := s.store.CompleteRefund(ctx, k, claim.Refund.ID, st)
	return r, false, err
}

func (s *Service) askRefund(ctx context.Context, rc RefundClaim) (RefundState, error) {
	prov, ok := s.providers[rc.Payment.Provider]
	if !ok {
		return RefundState{}, fmt.Errorf("%w %q", ErrUnknownProvider, rc.Payment.Provider)
	}
	return prov.Refund(ctx, RefundRequest{RefundID: rc.Refund.ID, Reference: rc.Refund.ProviderReference(), OrderID: rc.Payment.ProviderOrderID,
		PaymentID: rc.Payment.ProviderPaymentID, AmountMinor: rc.Refund.AmountMinor, Currency: rc.Refund.Currency, Reason: rc.Refund.Reason})
}

// Reconcile asks the providers about payments left open longer than
// PendingAfter (and not asked since) and refunds left unfinished, and
// settles what they answer through the same path as webhooks: captured
// payments are posted and receipted, failed ones marked, ones never paid
// within AbandonAfter expired. tenantID 0 covers every tenant (the
// periodic job); staff reconcile their tenant (c set, audited).
func (s *Service) Reconcile(ctx context.Context, tenantID int64, trigger string, c *Caller) (Reconciliation, error) {
	run, err := s.store.StartReconciliation(ctx, tenantID, trigger, c)
	if err != nil {
		return Reconciliation{}, err
	}
	now := s.cfg.Now()
	var failures []error
	open, err := s.store.OpenPayments(ctx, tenantID, now.Add(-s.cfg.PendingAfter), s.cfg.ReconcileBatch)
	if err != nil {
		failures = append(failures, err)
	}
	for _, p := range open {
		if ctx.Err() != nil {
			failures = append(failures, ctx.Err())
			break
		}
		run.Checked++
		out, err := s.reconcilePayment(ctx, p, now)
		if err != nil {
			run.Errors++
			s.cfg.Logger.Warn("reconcile payment", "payment_id", p.ID, "provider", p.Provider, "err", err)
			continue
		}
		if out.Result != "applied" {
			continue
		}
		switch out.Status {
		case StatusCaptured:
			run.Settled++
		case StatusFailed:
			run.Failed++
		case StatusExpired:
			run.Expired++
		}
	}
	refunds, err := s.store.OpenRefunds(ctx, tenantID, now.Add(-s.cfg.KeyLease), s.cfg.ReconcileBatch)
	if err != nil {
		failures = append(failures, err)
	}
	for _, rc := range refunds {
		if ctx.Err() != nil {
			break
		}
		final, err := s.reconcileRefund(ctx, rc)
		if err != nil {
			run.Errors++
			s.cfg.Logger.Warn("reconcile refund", "refund_id", rc.Refund.ID, "err", err)
			continue
		}
		if final {
			run.Refunds++
		}
	}
	if len(failures) > 0 {
		run.Error = errors.Join(failures...).Error()
	}
	fin := s.cfg.Now()
	run.FinishedAt = &fin
	if err := s.store.FinishReconciliation(context.WithoutCancel(ctx), run); err != nil {
		return run, err
	}
	return run, nil
}

func (s *Service) reconcilePayment(ctx context.Context, p Payment, now time.Time) (Outcome, error) {
	abandoned := now.Sub(p.CreatedAt) >= s.cfg.AbandonAfter
	expire := func(why string) (Outcome, error) {
		return s.store.ApplyEvent(ctx, Event{Provider: p.Provider, ID: fmt.Sprintf("reconcile:payment-%d:expired", p.ID), Type: "reconcile.expired",
			Kind: EventExpired, OrderID: p.ProviderOrderID, FailureReason: why, OccurredAt: now, LocalPaymentID: p.ID}, SourceReconciliation)
	}
	prov, ok := s.providers[p.Provider]
	if !ok {
		return Outcome{}, fmt.Errorf("%w %q", ErrUnknownProvider, p.Provider)
	}
	if p.ProviderOrderID == "" {
		// The provider was never reached (or its answer was lost and the
		// key never retried): nothing can have been paid on it.
		if abandoned {
			return expire("no provider order was created")
		}
		return Outcome{}, s.store.MarkChecked(ctx, p.ID)
	}
	st, err := prov.FetchOrder(ctx, p.ProviderOrderID)
	if errors.Is(err, ErrOrderNotFound) {
		if abandoned {
			return expire("the provider does not know the order")
		}
		return Outcome{}, s.store.MarkChecked(ctx, p.ID)
	}
	if err != nil {
		return Outcome{}, err
	}
	if st.Kind == EventPending {
		if abandoned && st.Attempts == 0 {
			return expire("the payer did not pay (checkout abandoned)")
		}
		return Outcome{}, s.store.MarkChecked(ctx, p.ID)
	}
	out, err := s.store.ApplyEvent(ctx, StateEvent(prov.Name(), st, SourceReconciliation), SourceReconciliation)
	if err != nil {
		return out, err
	}
	if out.Result != "applied" {
		err = s.store.MarkChecked(ctx, p.ID)
	}
	return out, err
}

// reconcileRefund asks again about a refund: a claimed one is requested
// again (idempotently), a pending one fetched. It reports whether the
// refund reached a final state.
func (s *Service) reconcileRefund(ctx context.Context, rc RefundClaim) (bool, error) {
	var st RefundState
	var err error
	prov, ok := s.providers[rc.Payment.Provider]
	if !ok {
		return false, fmt.Errorf("%w %q", ErrUnknownProvider, rc.Payment.Provider)
	}
	switch rc.Refund.Status {
	case RefundCreated:
		st, err = s.askRefund(ctx, rc)
	default:
		st, err = prov.FetchRefund(ctx, RefundRequest{RefundID: rc.Refund.ID, Reference: rc.Refund.ProviderReference(), OrderID: rc.Payment.ProviderOrderID,
			PaymentID: rc.Payment.ProviderPaymentID, AmountMinor: rc.Refund.AmountMinor, Currency: rc.Refund.Currency}, rc.Refund.ProviderRefundID)
	}
	if err != nil {
		return false, err
	}
	r, err := s.store.CompleteRefund(ctx, Key{}, rc.Refund.ID, st)
	if err != nil {
		return false, err
	}
	return r.Status == RefundProcessed || r.Status == RefundFailed, nil
}

// Reconciliations lists recent runs of the caller's tenant (and the
// periodic all-tenant ones), newest first.
func (s *Service) Reconciliations(ctx context.Context, c Caller, limit int) ([]Reconciliation, error) {
	return s.store.Reconciliations(ctx, c.TenantID, limit)
}

// OpenPayments lists the caller's tenant's payments open for longer than
// PendingAfter: what the next reconciliation will ask about.
func (s *Service) OpenPayments(ctx context.Context, c Caller, limit int) ([]Payment, error) {
	return s.store.OpenPayments(ctx, c.TenantID, s.cfg.Now().Add(-s.cfg.PendingAfter), limit)
}

// PurgeKeys deletes idempotency keys older than KeyRetention.
func (s *Service) PurgeKeys(ctx context.Context) (int64, error) {
	return s.store.PurgeKeys(ctx, s.cfg.Now().Add(-s.cfg.KeyRetention))
}

// AddMethod saves a payment method: the provider's token (sealed at
// rest), brand and last four digits.
func (s *Service) AddMethod(ctx context.Context, c Caller, m NewMethod) (SavedMethod, error) {
	v := newValidation()
	m.Token = strings.TrimSpace(m.Token)
	if m.Token == "" || len(m.Token) > 512 || strings.ContainsAny(m.Token, " \t\r\n") {
		v.add("token", "must be the provider's token for the method (no spaces, at most 512 characters)")
	}
	if _, err := ParseMethod(string(m.Method)); err != nil {
		v.add("method", "must be one of card, netbanking, wallet, upi")
	} else if p, ok := s.providers[m.Provider]; !ok {
		v.add("provider", fmt.Sprintf("must be a configured provider (%s)", strings.Join(s.order, ", ")))
	} else if !p.Supports(m.Method) {
		v.add("method", fmt.Sprintf("%s does not take %s payments", m.Provider, m.Method))
	}
	if len(m.Brand) > 40 {
		v.add("brand", "must be at most 40 characters")
	}
	if len(m.Label) > 100 {
		v.add("label", "must be at most 100 characters")
	}
	if m.Last4 != "" && (len(m.Last4) != 4 || strings.Trim(m.Last4, "0123456789") != "") {
		v.add("last4", "must be the last four digits")
	}
	if m.Method == MethodCard && m.Last4 == "" {
		v.add("last4", "is required for a card")
	}
	if err := v.err(); err != nil {
		return SavedMethod{}, err
	}
	return s.store.AddMethod(ctx, c, m)
}

// Methods lists the caller's saved methods.
func (s *Service) Methods(ctx context.Context, c Caller) ([]SavedMethod, error) {
	return s.store.Methods(ctx, c.TenantID, c.UserID)
}

// RemoveMethod removes one of the caller's saved methods, erasing its
// token.
func (s *Service) RemoveMethod(ctx context.Context, c Caller, id int64) error {
	return s.store.RemoveMethod(ctx, c, id)
}

// validation collects field problems.
type validation struct{ fields [][2]string }

func newValidation() *validation { return &validation{} }

func (v *validation) add(field, problem string) {
	v.fields = append(v.fields, [2]string{field, problem})
}

func (v *validation) err() error {
	if len(v.fields) == 0 {
		return nil
	}
	ve := &billing.ValidationError{Subject: "payment request"}
	for _, f := range v.fields {
		ve.Add(f[0], f[1])
	}
	return ve
}
