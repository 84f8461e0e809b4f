package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/api/audit"
	auditpg "github.com/meterd/meterd/api/audit/postgres"
	"github.com/meterd/meterd/api/keyring"
	"github.com/meterd/meterd/api/outbox"
	outboxpg "github.com/meterd/meterd/api/outbox/postgres"
	"github.com/meterd/meterd/billing/payment"
	"github.com/meterd/meterd/billing/payment/guard"
	"github.com/meterd/meterd/billing/payment/paymenttest"
	ppg "github.com/meterd/meterd/billing/payment/postgres"
	"github.com/meterd/meterd/billing/payment/razorpay"
	"github.com/meterd/meterd/billing/payment/sandbox"
	billingpg "github.com/meterd/meterd/billing/postgres"
	"github.com/meterd/meterd/deploy/schema"
	"github.com/meterd/meterd/deploy/schema/schematest"
)

func TestMain(m *testing.M) { schematest.Main(m) }

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// newPool returns a pool on a fresh database with the decimal codec, as
// cmd's pool has.
func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(schematest.URL(t, schema.ProfilePostgres))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 8
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error { pgxdecimal.Register(c.TypeMap()); return nil }
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// testOutbox and testAudit are cmd's adapters: the API's outbox and audit
// log behind the store's ports.
type testOutbox struct{}

func (testOutbox) Enqueue(ctx context.Context, tx pgx.Tx, msgs []billingpg.Notification) error {
	for _, m := range msgs {
		if err := outboxpg.Enqueue(ctx, tx, outbox.Message{TenantID: m.TenantID, UserID: m.UserID, Event: m.Event, Payload: m.Payload, DedupeKey: m.DedupeKey}); err != nil {
			return err
		}
	}
	return nil
}

type testAudit struct{}

func (testAudit) Write(ctx context.Context, tx pgx.Tx, e billingpg.AuditEntry) error {
	return auditpg.Write(ctx, tx, audit.Entry{TenantID: e.TenantID, ActorUserID: e.ActorUserID, ActorRole: e.ActorRole, Action: e.Action,
		EntityType: e.EntityType, EntityID: e.EntityID, After: e.After, Address: e.Address, RequestID: e.RequestID})
}

const sandboxSecret = "sandbox-secret-for-tests"

// env is the payments service on a fresh database with the sandbox (not
// started: tests deliver its webhooks themselves) and a Razorpay peer.
type env struct {
	t      *testing.T
	pool   *pgxpool.Pool
	ledger *paymenttest.Ledger
	store  *ppg.Store
	svc    *payment.Service
	sbx    *sandbox.Gateway
	rzp    *paymenttest.RazorpayPeer
	user   int64
	caller payment.Caller
	staff  payment.Caller
	now    atomic.Pointer[time.Time] // the service's clock; nil: real time
}

func newEnv(t *testing.T, tweak func(*payment.Config)) *env {
	t.Helper()
	e := &env{t: t, pool: newPool(t)}
	e.ledger = paymenttest.NewLedger(t, e.pool, "demo")
	e.user = e.ledger.Consumer("asha@example.com")
	var staff int64
	must(t, e.pool.QueryRow(context.Background(), `INSERT INTO users (tenant_id, email, role, department, password_hash) VALUES ($1, 'officer@example.com', 'official', 'billing', '$argon2id$x') RETURNING id`,
		e.ledger.TenantID).Scan(&staff))
	e.caller = payment.Caller{TenantID: e.ledger.TenantID, UserID: e.user, Role: "consumer", OwnerOnly: true, RequestID: "test"}
	e.staff = payment.Caller{TenantID: e.ledger.TenantID, UserID: staff, Role: "official", RequestID: "test"}
	ring, err := keyring.New([]keyring.Key{{ID: "1", Secret: bytes.Repeat([]byte{7}, 32)}})
	must(t, err)
	e.store, err = ppg.New(e.pool, ppg.Deps{Ledger: billingpg.NewStore(e.pool, billingpg.Deps{}), Outbox: testOutbox{}, Audit: testAudit{}, Sealer: ring})
	must(t, err)
	e.sbx, err = sandbox.New(sandbox.Config{Secret: sandboxSecret, CheckoutURL: "http://meterd.test/sandbox/checkout"})
	must(t, err)
	e.rzp = paymenttest.NewRazorpayPeer(t)
	rp, err := razorpay.New(razorpay.Config{BaseURL: e.rzp.URL, KeyID: e.rzp.KeyID, KeySecret: e.rzp.KeySecret, WebhookSecrets: []string{e.rzp.WebhookSecret}})
	must(t, err)
	var provs []payment.Provider
	for _, p := range []payment.Provider{e.sbx, rp} {
		g, err := guard.Wrap(p, guard.Config{Timeout: 5 * time.Second, Failures: 100})
		must(t, err)
		provs = append(provs, g)
	}
	cfg := payment.Config{Now: func() time.Time {
		if p := e.now.Load(); p != nil {
			return *p
		}
		return time.Now()
	}}
	if tweak != nil {
		tweak(&cfg)
	}
	e.svc, err = payment.New(e.store, provs, cfg)
	must(t, err)
	return e
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var keys atomic.Int64

func key() string { return fmt.Sprintf("key-%d-%d", time.Now().UnixNano(), keys.Add(1)) }

// pay creates a sandbox payment of amount on bill with method.
func (e *env) pay(bill int64, amount string, m payment.Method) payment.Payment {
	e.t.Helper()
	p, replayed, err := e.svc.Create(context.Background(), e.caller, key(), payment.CreateRequest{BillID: bill, Amount: dec(amount), Method: m, Provider: sandbox.Name})
	must(e.t, err)
	if replayed || p.Status != payment.StatusPending || p.NextAction == nil || p.NextAction.Type != "redirect" {
		e.t.Fatalf("new payment %+v (replayed %v)", p, replayed)
	}
	return p
}

// checkout plays the payer on the sandbox page and delivers the sandbox's
// webhooks for the order (as its sender would), returning the outcomes.
func (e *env) checkout(p payment.Payment, instrument string) []payment.Outcome {
	e.t.Helper()
	before := len(e.sbx.Webhooks(p.ProviderOrderID))
	_, err := e.sbx.Pay(p.ProviderOrderID, instrument)
	must(e.t, err)
	var out []payment.Outcome
	for _, w := range e.sbx.Webhooks(p.ProviderOrderID)[before:] {
		out = append(out, e.deliver(w))
	}
	return out
}

func (e *env) deliver(w sandbox.Webhook) payment.Outcome {
	e.t.Helper()
	o, err := e.svc.HandleWebhook(context.Background(), sandbox.Name, w.Header, w.Body)
	must(e.t, err)
	return o
}

func (e *env) payment(id int64) payment.Payment {
	e.t.Helper()
	p, err := e.svc.Payment(context.Background(), e.caller, id)
	must(e.t, err)
	return p
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	must(e.t, e.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func (e *env) billStatus(id int64) (string, decimal.Decimal) {
	e.t.Helper()
	var st string
	var paid decimal.Decimal
	must(e.t, e.pool.QueryRow(context.Background(), `SELECT status, paid_amount FROM bills WHERE id = $1`, id).Scan(&st, &paid))
	return st, paid
}

// TV18's shape on a sewerage bill of 60: a part payment, the exact
// amount, and an overpayment whose excess becomes the negative
// SW_ADVANCE_CARRYFORWARD detail TV18 starts from.
func TestAllocationTV18(t *testing.T) {
	for _, tt := range []struct {
		name       string
		minimum    string // bill's minimum payable
		amount     string
		status     string
		charge     string // SW_CHARGE outstanding after
		advance    string // advance carried (receipt)
		wantReject bool
	}{
		{name: "part payment allowed", minimum: "30.00", amount: "40.00", status: "partially_paid", charge: "20.00", advance: "0"},
		{name: "part payment below the minimum", minimum: "30.00", amount: "20.00", wantReject: true},
		{name: "part payment not allowed", minimum: "", amount: "40.00", wantReject: true},
		{name: "exact", minimum: "", amount: "60.00", status: "paid", charge: "0", advance: "0"},
		{name: "overpayment", minimum: "", amount: "110.00", status: "paid", charge: "0", advance: "50.00"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			sw := e.ledger.SewerageTV18(e.user, tt.minimum)
			_, _, err := e.svc.Create(context.Background(), e.caller, key(), payment.CreateRequest{BillID: sw.Bill, Amount: dec(tt.amount), Method: payment.MethodUPI})
			if tt.wantReject {
				if !errors.Is(err, payment.ErrInvalidInput) || e.count(`SELECT count(*) FROM payments`) != 0 {
					t.Fatalf("err = %v; payments %d", err, e.count(`SELECT count(*) FROM payments`))
				}
				return
			}
			must(t, err)
			p := e.pay(sw.Bill, tt.amount, payment.MethodUPI)
			outs := e.checkout(p, "upi_success")
			if len(outs) != 2 || outs[1].Result != "applied" || outs[1].Status != payment.StatusCaptured {
				t.Fatalf("outcomes %+v", outs)
			}
			if st, _ := e.billStatus(sw.Bill); st != tt.status {
				t.Errorf("bill %s, want %s", st, tt.status)
			}
			out := e.ledger.Outstanding(sw.Demand)
			if !out["SW_CHARGE"].Equal(dec(tt.charge)) {
				t.Errorf("SW_CHARGE outstanding %s, want %s", out["SW_CHARGE"], tt.charge)
			}
			r, err := e.svc.Receipt(context.Background(), e.caller, p.ID)
			must(t, err)
			if !r.Advance.Equal(dec(tt.advance)) || !r.Amount.Equal(dec(tt.amount)) {
				t.Errorf("receipt amount %s advance %s", r.Amount, r.Advance)
			}
			if tt.advance != "0" {
				// TV18's previous demand: SW_CHARGE 60 collected 60,
				// SW_ADVANCE_CARRYFORWARD -50 collected 0.
				if !out["SW_ADVANCE_CARRYFORWARD"].Equal(dec("-50")) {
					t.Errorf("advance detail outstanding %s, want -50", out["SW_ADVANCE_CARRYFORWARD"])
				}
				var tax, coll decimal.Decimal
				must(t, e.pool.QueryRow(context.Background(), `SELECT tax_amount, collection_amount FROM demand_details WHERE demand_id = $1 AND tax_head = 'SW_ADVANCE_CARRYFORWARD'`,
					sw.Demand).Scan(&tax, &coll))
				if !tax.Equal(dec("-50")) || !coll.IsZero() {
					t.Errorf("advance detail %s collected %s", tax, coll)
				}
			}
		})
	}
}

// An electricity bill with arrears and a late-payment surcharge: money
// goes to the oldest period first, the surcharge before its charges, then
// the current period; an overpayment is advance.
func TestAllocationElectricityWithArrears(t *testing.T) {
	for _, tt := range []struct {
		name        string
		amount      string
		april, may  string // outstanding after
		aprilStatus string
		mayStatus   string
		first       string // first allocation head
		advance     string
	}{
		{"part payment", "600.00", "0", "449.06", "paid", "partially_paid", "late_payment_surcharge", "0"},
		{"exact", "1049.06", "0", "0", "paid", "paid", "late_payment_surcharge", "0"},
		{"overpayment", "1100.00", "0", "-50.94", "paid", "paid", "late_payment_surcharge", "50.94"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			el := e.ledger.ElectricityWithArrears(e.user)
			p := e.pay(el.MayBill, tt.amount, payment.MethodCard)
			e.checkout(p, "card_visa")
			r, err := e.svc.Receipt(context.Background(), e.caller, p.ID)
			must(t, err)
			if len(r.Allocation) == 0 || r.Allocation[0].TaxHead != tt.first || r.Allocation[0].PeriodFrom != "2024-04-01" || !r.Advance.Equal(dec(tt.advance)) {
				t.Fatalf("receipt allocation %+v advance %s", r.Allocation, r.Advance)
			}
			sum := r.Advance
			for _, a := range r.Allocation {
				sum = sum.Add(a.Amount)
			}
			if !sum.Equal(dec(tt.amount)) {
				t.Errorf("allocation + advance = %s, want %s", sum, tt.amount)
			}
			total := func(m map[string]decimal.Decimal) decimal.Decimal {
				s := decimal.Zero
				for _, v := range m {
					s = s.Add(v)
				}
				return s
			}
			if got := total(e.ledger.Outstanding(el.April)); !got.Equal(dec(tt.april)) {
				t.Errorf("April outstanding %s, want %s", got, tt.april)
			}
			if got := total(e.ledger.Outstanding(el.May)); !got.Equal(dec(tt.may)) {
				t.Errorf("May outstanding %s, want %s", got, tt.may)
			}
			if st, _ := e.billStatus(el.AprilBill); st != tt.aprilStatus {
				t.Errorf("April bill %s, want %s", st, tt.aprilStatus)
			}
			if st, _ := e.billStatus(el.MayBill); st != tt.mayStatus {
				t.Errorf("May bill %s, want %s", st, tt.mayStatus)
			}
		})
	}
	// A part payment below the minimum payable is refused.
	e := newEnv(t, nil)
	el := e.ledger.ElectricityWithArrears(e.user)
	_, _, err := e.svc.Create(context.Background(), e.caller, key(), payment.CreateRequest{BillID: el.MayBill, Amount: dec("300"), Method: payment.MethodCard})
	var ve interface{ Error() string }
	if !errors.Is(err, payment.ErrInvalidInput) || !errors.As(err, &ve) || !strings.Contains(err.Error(), "minimum payable 524.53") {
		t.Errorf("below minimum: %v", err)
	}
}

// A capture webhook delivered ten times (at once) yields one posting, one
// receipt and one notification.
func TestWebhookReplayedTenTimes(t *testing.T) {
	e := newEnv(t, nil)
	el := e.ledger.ElectricityWithArrears(e.user)
	p := e.pay(el.MayBill, "1049.06", payment.MethodWallet)
	_, err := e.sbx.Pay(p.ProviderOrderID, "wallet_success")
	must(t, err)
	hooks := e.sbx.Webhooks(p.ProviderOrderID)
	captured := hooks[len(hooks)-1]
	var wg sync.WaitGroup
	results := make(chan string, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := e.svc.HandleWebhook(context.Background(), sandbox.Name, captured.Header, captured.Body)
			if err != nil {
				t.Error(err)
				return
			}
			results <- o.Result
		}()
	}
	wg.Wait()
	close(results)
	counts := map[string]int{}
	for r := range results {
		counts[r]++
	}
	if counts["applied"] != 1 || counts["duplicate"] != 9 {
		t.Errorf("results %v, want 1 applied and 9 duplicates", counts)
	}
	e.deliver(hooks[0]) // the authorized event, late: ignored
	for table, want := range map[string]int{
		`SELECT count(*) FROM receipts`:                                              1,
		`SELECT count(*) FROM collection_postings WHERE kind = 'payment'`:            1,
		`SELECT count(*) FROM notification_outbox WHERE event = 'payment.succeeded'`: 1,
		`SELECT count(*) FROM payment_events`:                                        2,
	} {
		if got := e.count(table); got != want {
			t.Errorf("%s = %d, want %d", table, got, want)
		}
	}
	got := e.payment(p.ID)
	if got.Status != payment.StatusCaptured || got.ReceiptNumber == "" || got.Instrument.Brand != "Sandbox Wallet" {
		t.Errorf("payment %+v", got)
	}
	var payload string
	must(t, e.pool.QueryRow(context.Background(), `SELECT payload::text FROM notification_outbox WHERE event = 'payment.succeeded'`).Scan(&payload))
	for _, want := range []string{`"receipt_number": "` + got.ReceiptNumber + `"`, `"amount": "1049.06"`, `"method": "wallet"`, `"bill_number": "` + el.MayNumber + `"`} {
		if !strings.Contains(payload, want) {
			t.Errorf("payment.succeeded payload %s lacks %s", payload, want)
		}
	}
}

// Events in any order: a failure after the capture changes nothing; a
// capture after a failure (late authorisation) is money received.
func TestOutOfOrderEvents(t *testing.T) {
	e := newEnv(t, nil)
	sw := e.ledger.SewerageTV18(e.user, "")
	p := e.pay(sw.Bill, "60", payment.MethodCard)
	_, err := e.sbx.Pay(p.ProviderOrderID, "card_declined")
	must(t, err)
	failedEarly := e.sbx.Webhooks(p.ProviderOrderID)[0]
	_, err = e.sbx.Pay(p.ProviderOrderID, "card_visa")
	must(t, err)
	hooks := e.sbx.Webhooks(p.ProviderOrderID)
	// captured first, then authorized, then the earlier failure.
	for i, w := range []sandbox.Webhook{hooks[2], hooks[1], failedEarly} {
		o := e.deliver(w)
		want := []string{"applied", "ignored", "ignored"}[i]
		if o.Result != want || o.Status != payment.StatusCaptured {
			t.Errorf("event %d (%s): %+v, want %s", i, w.Type, o, want)
		}
	}
	if st, _ := e.billStatus(sw.Bill); st != "paid" {
		t.Errorf("bill %s after a failure that followed the capture", st)
	}
	if n := e.count(`SELECT count(*) FROM collection_postings`); n != 1 {
		t.Errorf("%d postings", n)
	}

	// Late authorisation: failed, then captured.
	sw2 := e.ledger.SewerageTV18(e.user, "")
	p2 := e.pay(sw2.Bill, "60", payment.MethodUPI)
	if o := e.checkout(p2, "upi_failure"); o[0].Status != payment.StatusFailed {
		t.Fatalf("failure %+v", o)
	}
	got := e.payment(p2.ID)
	if got.Status != payment.StatusFailed || got.FailureCode != "upi_declined" || got.FailureReason == "" {
		t.Fatalf("failed payment %+v", got)
	}
	if o := e.checkout(p2, "upi_success"); o[1].Status != payment.StatusCaptured {
		t.Fatalf("late capture %+v", o)
	}
	if st, _ := e.billStatus(sw2.Bill); st != "paid" {
		t.Errorf("bill %s after a late capture", st)
	}
}

func TestTamperedWebhooksStoreNothing(t *testing.T) {
	e := newEnv(t, nil)
	sw := e.ledger.SewerageTV18(e.user, "")
	p := e.pay(sw.Bill, "60", payment.MethodUPI)
	_, err := e.sbx.Pay(p.ProviderOrderID, "upi_success")
	must(t, err)
	w := e.sbx.Webhooks(p.ProviderOrderID)[1]
	tampered := bytes.Replace(w.Body, []byte(`"amount":6000`), []byte(`"amount":600000`), 1)
	if bytes.Equal(tampered, w.Body) {
		t.Fatal("tampering did nothing")
	}
	stale := http.Header{}
	stale.Set("X-Sandbox-Signature", payment.SignTimestamped(sandboxSecret, time.Now().Add(-time.Hour), w.Body))
	wrong := http.Header{}
	wrong.Set("X-Sandbox-Signature", payment.SignTimestamped("some-other-secret-123", time.Now(), w.Body))
	for _, tt := range []struct {
		name string
		h    http.Header
		body []byte
		want error
	}{
		{"tampered", w.Header, tampered, payment.ErrSignature},
		{"wrongly signed", wrong, w.Body, payment.ErrSignature},
		{"stale", stale, w.Body, payment.ErrStale},
		{"unsigned", http.Header{}, w.Body, payment.ErrSignature},
	} {
		if _, err := e.svc.HandleWebhook(context.Background(), sandbox.Name, tt.h, tt.body); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if n := e.count(`SELECT count(*) FROM payment_events`); n != 0 {
		t.Errorf("%d events stored from rejected deliveries", n)
	}
	if e.payment(p.ID).Status != payment.StatusPending {
		t.Error("a rejected webhook changed the payment")
	}
}

// Idempotency keys: a retry replays the first answer, a different request
// with the key is refused, concurrent requests make one payment, and a
// provider failure lets a retry resume the same payment with one order.
func TestIdempotency(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	el := e.ledger.ElectricityWithArrears(e.user)
	req := payment.CreateRequest{BillID: el.MayBill, Amount: dec("1049.06"), Method: payment.MethodNetbanking, Provider: razorpay.Name}
	k := key()
	e.rzp.FailNext(503)
	if _, _, err := e.svc.Create(ctx, e.caller, k, req); !errors.Is(err, payment.ErrProviderUnavailable) {
		t.Fatalf("provider down: %v", err)
	}
	first, replayed, err := e.svc.Create(ctx, e.caller, k, req)
	must(t, err)
	if replayed || first.Status != payment.StatusPending || first.ProviderOrderID == "" || e.count(`SELECT count(*) FROM payments`) != 1 || e.rzp.Orders() != 1 {
		t.Fatalf("resumed %+v replayed %v; %d payments, %d orders", first, replayed, e.count(`SELECT count(*) FROM payments`), e.rzp.Orders())
	}
	// "1049.060" is the same request.
	req2 := req
	req2.Amount = dec("1049.060")
	again, replayed, err := e.svc.Create(ctx, e.caller, k, req2)
	if err != nil || !replayed || again.ID != first.ID || again.NextAction.Params["order_id"] != first.ProviderOrderID {
		t.Fatalf("replay %+v %v %v", again, replayed, err)
	}
	req2.Amount = dec("600")
	if _, _, err := e.svc.Create(ctx, e.caller, k, req2); !errors.Is(err, payment.ErrIdempotencyMismatch) {
		t.Errorf("different body: %v", err)
	}
	// Another consumer's key space is its own.
	other := e.ledger.Consumer("ravi@example.com")
	c2 := payment.Caller{TenantID: e.ledger.TenantID, UserID: other, Role: "consumer", OwnerOnly: true}
	if _, _, err := e.svc.Create(ctx, c2, k, req); !errors.Is(err, payment.ErrBillNotFound) {
		t.Errorf("another consumer paying this bill: %v", err)
	}

	// 100 at once with one key: one payment.
	k = key()
	req.Provider = sandbox.Name
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[int64]int{}
	inUse := 0
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, _, err := e.svc.Create(ctx, e.caller, k, req)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, payment.ErrIdempotencyInUse):
				inUse++
			case err != nil:
				t.Error(err)
			default:
				ids[p.ID]++
			}
		}()
	}
	wg.Wait()
	if len(ids) != 1 || e.count(`SELECT count(*) FROM payments WHERE provider = 'sandbox'`) != 1 {
		t.Errorf("payments %v (%d in use)", ids, inUse)
	}
}

func TestReconciliation(t *testing.T) {
	e := newEnv(t, func(c *payment.Config) { c.PendingAfter, c.AbandonAfter = 10*time.Minute, 2*time.Hour })
	ctx := context.Background()
	el := e.ledger.ElectricityWithArrears(e.user)
	sw := e.ledger.SewerageTV18(e.user, "")
	paid := e.pay(el.MayBill, "1049.06", payment.MethodUPI)
	abandoned := e.pay(sw.Bill, "60", payment.MethodCard)
	// The payer pays but the webhook never arrives.
	_, err := e.sbx.Pay(paid.ProviderOrderID, "upi_success")
	must(t, err)
	// Too young: nothing is asked.
	run, err := e.svc.Reconcile(ctx, 0, "schedule", nil)
	must(t, err)
	if run.Checked != 0 {
		t.Fatalf("young payments checked: %+v", run)
	}
	later := time.Now().Add(30 * time.Minute)
	e.now.Store(&later)
	run, err = e.svc.Reconcile(ctx, e.ledger.TenantID, "staff", &e.staff)
	must(t, err)
	if run.Checked != 2 || run.Settled != 1 || run.Expired != 0 || run.Errors != 0 {
		t.Fatalf("run %+v", run)
	}
	if got := e.payment(paid.ID); got.Status != payment.StatusCaptured || got.ReceiptNumber == "" {
		t.Errorf("settled payment %+v", got)
	}
	// The webhook arriving afterwards changes nothing.
	e.now.Store(nil)
	for _, w := range e.sbx.Webhooks(paid.ProviderOrderID) {
		if o := e.deliver(w); o.Result == "applied" {
			t.Errorf("late webhook applied: %+v", o)
		}
	}
	if n := e.count(`SELECT count(*) FROM receipts`); n != 1 {
		t.Errorf("%d receipts", n)
	}
	// Checked, so not asked again until PendingAfter passes; after the
	// abandonment window the unpaid checkout expires.
	run, err = e.svc.Reconcile(ctx, 0, "schedule", nil)
	must(t, err)
	if run.Checked != 0 {
		t.Errorf("asked again at once: %+v", run)
	}
	muchLater := time.Now().Add(3 * time.Hour)
	e.now.Store(&muchLater)
	run, err = e.svc.Reconcile(ctx, 0, "schedule", nil)
	must(t, err)
	if run.Checked != 1 || run.Expired != 1 {
		t.Fatalf("run %+v", run)
	}
	if got := e.payment(abandoned.ID); got.Status != payment.StatusExpired || got.FailureReason == "" {
		t.Errorf("abandoned %+v", got)
	}
	runs, err := e.svc.Reconciliations(ctx, e.staff, 10)
	must(t, err)
	if len(runs) != 4 || runs[0].FinishedAt == nil || runs[2].Trigger != "staff" {
		t.Errorf("runs %+v", runs)
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'payment.reconcile'`); n != 1 {
		t.Errorf("%d audited reconciliations", n)
	}
}

func TestRefunds(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	el := e.ledger.ElectricityWithArrears(e.user)
	p := e.pay(el.MayBill, "1100", payment.MethodCard) // 50.94 advance
	e.checkout(p, "card_mastercard")
	if _, _, err := e.svc.Refund(ctx, e.staff, key(), p.ID, payment.RefundInput{Reason: ""}); !errors.Is(err, payment.ErrInvalidInput) {
		t.Errorf("no reason: %v", err)
	}
	if _, _, err := e.svc.Refund(ctx, e.staff, key(), p.ID, payment.RefundInput{Amount: dec("2000"), Reason: "typo"}); !errors.Is(err, payment.ErrConflict) {
		t.Errorf("too much: %v", err)
	}
	k := key()
	r, replayed, err := e.svc.Refund(ctx, e.staff, k, p.ID, payment.RefundInput{Amount: dec("100"), Reason: "paid twice by mistake"})
	must(t, err)
	if replayed || r.Status != payment.RefundProcessed || !r.Amount.Equal(dec("100")) {
		t.Fatalf("refund %+v", r)
	}
	again, replayed, err := e.svc.Refund(ctx, e.staff, k, p.ID, payment.RefundInput{Amount: dec("100"), Reason: "paid twice by mistake"})
	if err != nil || !replayed || again.ID != r.ID {
		t.Fatalf("replayed refund %+v %v %v", again, replayed, err)
	}
	// 1000 remains posted: oldest first, April paid, May owes 49.06.
	got := e.payment(p.ID)
	if got.Status != payment.StatusCaptured || !got.RefundedAmount.Equal(dec("100")) {
		t.Errorf("payment after partial refund %+v", got)
	}
	if st, _ := e.billStatus(el.MayBill); st != "partially_paid" {
		t.Errorf("May bill %s after a partial refund", st)
	}
	total := decimal.Zero
	for _, v := range e.ledger.Outstanding(el.May) {
		total = total.Add(v)
	}
	if !total.Equal(dec("49.06")) {
		t.Errorf("May outstanding %s, want 49.06", total)
	}
	// The sandbox's refund.processed webhook is a duplicate of what is
	// recorded.
	hooks := e.sbx.Webhooks(p.ProviderOrderID)
	if o := e.deliver(hooks[len(hooks)-1]); o.Result != "ignored" {
		t.Errorf("refund webhook after the refund: %+v", o)
	}
	// The rest.
	r2, _, err := e.svc.Refund(ctx, e.staff, key(), p.ID, payment.RefundInput{Reason: "account closed"})
	must(t, err)
	if !r2.Amount.Equal(dec("1000")) || r2.Status != payment.RefundProcessed {
		t.Fatalf("second refund %+v", r2)
	}
	if got := e.payment(p.ID); got.Status != payment.StatusRefunded || !got.RefundedAmount.Equal(dec("1100")) {
		t.Errorf("fully refunded %+v", got)
	}
	for _, b := range []int64{el.AprilBill, el.MayBill} {
		if st, _ := e.billStatus(b); st == "paid" {
			t.Errorf("bill %d still paid after the full refund", b)
		}
	}
	if n := e.count(`SELECT count(*) FROM collection_postings WHERE kind = 'reversal'`); n != 2 {
		t.Errorf("%d reversals", n)
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'payment.refund'`); n != 2 {
		t.Errorf("%d audited refunds", n)
	}
	if _, _, err := e.svc.Refund(ctx, e.staff, key(), p.ID, payment.RefundInput{Reason: "again"}); !errors.Is(err, payment.ErrConflict) {
		t.Errorf("refunding a refunded payment: %v", err)
	}
}

// A Razorpay refund the provider leaves pending is finished by its
// refund.processed webhook.
func TestPendingRefundSettledByWebhook(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	sw := e.ledger.SewerageTV18(e.user, "")
	p, _, err := e.svc.Create(ctx, e.caller, key(), payment.CreateRequest{BillID: sw.Bill, Amount: dec("60"), Method: payment.MethodCard, Provider: razorpay.Name})
	must(t, err)
	py := e.rzp.Pay(p.ProviderOrderID, payment.MethodCard, paymenttest.RazorpayCaptured)
	body, h := e.rzp.Webhook("payment.captured", py)
	o, err := e.svc.HandleWebhook(ctx, razorpay.Name, h, body)
	if err != nil || o.Status != payment.StatusCaptured {
		t.Fatalf("capture %+v %v", o, err)
	}
	got := e.payment(p.ID)
	if got.Instrument.Brand != "Visa" || got.Instrument.Last4 != "1111" || got.ProviderPaymentID != py["id"] {
		t.Errorf("instrument %+v", got)
	}
	r, _, err := e.svc.Refund(ctx, e.staff, key(), p.ID, payment.RefundInput{Amount: dec("60"), Reason: "duplicate"})
	must(t, err)
	if r.Status != payment.RefundProcessed {
		t.Fatalf("razorpay peer processes refunds at once: %+v", r)
	}
	// Replays of refund events are harmless; a refund made at the
	// dashboard is flagged.
	rf := e.rzp.Refund(r.ProviderRefundID)
	body, h = e.rzp.Webhook("refund.processed", rf)
	if o, err := e.svc.HandleWebhook(ctx, razorpay.Name, h, body); err != nil || o.Result != "ignored" {
		t.Errorf("refund.processed replay %+v %v", o, err)
	}
	body, h = e.rzp.Webhook("refund.processed", map[string]any{"id": "rfnd_dashboard1", "entity": "refund", "amount": 100, "payment_id": py["id"], "status": "processed"})
	if o, err := e.svc.HandleWebhook(ctx, razorpay.Name, h, body); err != nil || o.Result != "anomaly" {
		t.Errorf("outside refund %+v %v", o, err)
	}
}

func TestSavedMethods(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, bad := range []payment.NewMethod{
		{Provider: "sandbox", Method: payment.MethodCard, Token: "sbx_tok_card_visa"},                 // no last4
		{Provider: "sandbox", Method: payment.MethodCard, Token: "sbx_tok_card_visa", Last4: "41111"}, // not four digits
		{Provider: "nowhere", Method: payment.MethodCard, Token: "x", Last4: "1111"},                  // unknown provider
		{Provider: "sandbox", Method: payment.MethodCard, Token: "has space", Last4: "1111"},          // not a token
	} {
		if _, err := e.svc.AddMethod(ctx, e.caller, bad); !errors.Is(err, payment.ErrInvalidInput) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	m, err := e.svc.AddMethod(ctx, e.caller, payment.NewMethod{Provider: "sandbox", Method: payment.MethodCard, Token: "sbx_tok_card_visa", Brand: "Visa", Last4: "1111", Label: "My debit card"})
	must(t, err)
	var sealed []byte
	must(t, e.pool.QueryRow(ctx, `SELECT token_enc FROM saved_payment_methods WHERE id = $1`, m.ID).Scan(&sealed))
	if bytes.Contains(sealed, []byte("sbx_tok")) || sealed[0] != 1 {
		t.Errorf("token at rest %q", sealed)
	}
	sw := e.ledger.SewerageTV18(e.user, "")
	p, _, err := e.svc.Create(ctx, e.caller, key(), payment.CreateRequest{BillID: sw.Bill, Amount: dec("60"), Method: payment.MethodCard, SavedMethodID: m.ID})
	must(t, err)
	if p.Status != payment.StatusCaptured || p.ReceiptNumber == "" || p.NextAction.Type != "none" {
		t.Fatalf("paid with a saved card: %+v", p)
	}
	must(t, e.svc.RemoveMethod(ctx, e.caller, m.ID))
	var gone bool
	must(t, e.pool.QueryRow(ctx, `SELECT token_enc IS NULL FROM saved_payment_methods WHERE id = $1`, m.ID).Scan(&gone))
	if !gone {
		t.Error("removed method kept its token")
	}
	if list, _ := e.svc.Methods(ctx, e.caller); len(list) != 0 {
		t.Errorf("methods after removal %+v", list)
	}
	if _, _, err := e.svc.Create(ctx, e.caller, key(), payment.CreateRequest{BillID: sw.Bill, Amount: dec("60"), Method: payment.MethodCard, SavedMethodID: m.ID}); !errors.Is(err, payment.ErrInvalidInput) && !errors.Is(err, payment.ErrConflict) {
		t.Errorf("paying with a removed method: %v", err)
	}
}

func TestReceiptNumbersAreGapFree(t *testing.T) {
	e := newEnv(t, nil)
	var numbers []string
	for i := 0; i < 4; i++ {
		sw := e.ledger.SewerageTV18(e.user, "")
		p := e.pay(sw.Bill, "60", payment.MethodWallet)
		if i == 1 {
			e.checkout(p, "wallet_failure") // no receipt for a failure
			continue
		}
		e.checkout(p, "wallet_success")
		numbers = append(numbers, e.payment(p.ID).ReceiptNumber)
	}
	var fy string
	must(t, e.pool.QueryRow(context.Background(), `SELECT DISTINCT financial_year::text FROM receipts`).Scan(&fy))
	for i, n := range numbers {
		if !strings.HasPrefix(n, "RCPT/") || !strings.HasSuffix(n, fmt.Sprintf("/%06d", i+1)) {
			t.Errorf("receipt %d numbered %s", i, n)
		}
	}
}
