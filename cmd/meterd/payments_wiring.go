package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/shopspring/decimal"
	"github.com/sony/gobreaker/v2"

	"github.com/meterd/meterd/api"
	"github.com/meterd/meterd/api/keyring"
	"github.com/meterd/meterd/billing/payment"
	"github.com/meterd/meterd/billing/payment/guard"
	paymentpg "github.com/meterd/meterd/billing/payment/postgres"
	"github.com/meterd/meterd/billing/payment/razorpay"
	"github.com/meterd/meterd/billing/payment/sandbox"
	"github.com/meterd/meterd/billing/payment/stripe"
	billingpg "github.com/meterd/meterd/billing/postgres"
)

// paymentsConfig configures payments (issue 7): the providers, the guard
// around them, and reconciliation. With no provider configured the
// payment routes are not served.
type paymentsConfig struct {
	sandbox bool
	// sandboxAtServer points the sandbox at the server's own address once
	// it listens (meterd dev), unless its URLs are configured.
	sandboxAtServer   bool
	sandboxSecret     string
	sandboxWebhookURL string
	sandboxCheckout   string

	razorpayBaseURL        string
	razorpayKeyID          string
	razorpayKeySecret      string
	razorpayWebhookSecrets []string

	stripeBaseURL        string
	stripeSecretKey      string
	stripePublishableKey string
	stripeWebhookSecrets []string

	routes          []string // method=provider
	timeout         time.Duration
	breakerFailures int
	breakerOpenFor  time.Duration
	pendingAfter    time.Duration
	abandonAfter    time.Duration
	reconcileEvery  time.Duration
	keyRetention    time.Duration
	maxAdvance      string
}

func (c *paymentsConfig) register(f *flags) {
	f.Bool(&c.sandbox, "payments-sandbox", "METERD_PAYMENTS_SANDBOX", false, "serve the built-in sandbox payment provider (checkout page at /sandbox/checkout; no money moves; one instance only)")
	f.String(&c.sandboxSecret, "payments-sandbox-secret", "METERD_PAYMENTS_SANDBOX_SECRET", "", "secret signing the sandbox's webhooks (default: random per start)")
	f.String(&c.sandboxWebhookURL, "payments-sandbox-webhook-url", "METERD_PAYMENTS_SANDBOX_WEBHOOK_URL", "", "where the sandbox delivers webhooks (default: <public-url>/api/webhooks/sandbox)")
	f.String(&c.sandboxCheckout, "payments-sandbox-checkout-url", "METERD_PAYMENTS_SANDBOX_CHECKOUT_URL", "", "the sandbox checkout page as payers reach it (default: <public-url>/sandbox/checkout)")
	f.String(&c.razorpayBaseURL, "razorpay-base-url", "METERD_RAZORPAY_BASE_URL", "https://api.razorpay.com", "Razorpay API root")
	f.String(&c.razorpayKeyID, "razorpay-key-id", "METERD_RAZORPAY_KEY_ID", "", "Razorpay key id (rzp_live_… or rzp_test_…); set to enable Razorpay")
	f.String(&c.razorpayKeySecret, "razorpay-key-secret", "METERD_RAZORPAY_KEY_SECRET", "", "Razorpay key secret")
	f.List(&c.razorpayWebhookSecrets, "razorpay-webhook-secrets", "METERD_RAZORPAY_WEBHOOK_SECRETS", "", "Razorpay webhook secrets, current first (older ones during a rotation)")
	f.String(&c.stripeBaseURL, "stripe-base-url", "METERD_STRIPE_BASE_URL", "https://api.stripe.com", "Stripe API root")
	f.String(&c.stripeSecretKey, "stripe-secret-key", "METERD_STRIPE_SECRET_KEY", "", "Stripe secret key (sk_…); set to enable Stripe")
	f.String(&c.stripePublishableKey, "stripe-publishable-key", "METERD_STRIPE_PUBLISHABLE_KEY", "", "Stripe publishable key (pk_…) given to clients")
	f.List(&c.stripeWebhookSecrets, "stripe-webhook-secrets", "METERD_STRIPE_WEBHOOK_SECRETS", "", "Stripe endpoint signing secrets (whsec_…), current first")
	f.List(&c.routes, "payments-routes", "METERD_PAYMENTS_ROUTES", "", "provider per method, e.g. card=stripe,upi=razorpay (default: the first configured provider taking the method: razorpay, stripe, sandbox)")
	f.Duration(&c.timeout, "payments-timeout", "METERD_PAYMENTS_TIMEOUT", 10*time.Second, "timeout of each payment provider call")
	f.Int(&c.breakerFailures, "payments-breaker-failures", "METERD_PAYMENTS_BREAKER_FAILURES", 5, "consecutive provider failures that open its circuit breaker")
	f.Duration(&c.breakerOpenFor, "payments-breaker-open", "METERD_PAYMENTS_BREAKER_OPEN", 30*time.Second, "how long an open breaker refuses calls before a probe")
	f.Duration(&c.pendingAfter, "payments-pending-after", "METERD_PAYMENTS_PENDING_AFTER", 15*time.Minute, "age after which reconciliation asks the provider about an open payment")
	f.Duration(&c.abandonAfter, "payments-abandon-after", "METERD_PAYMENTS_ABANDON_AFTER", 24*time.Hour, "age after which an unpaid checkout expires")
	f.Duration(&c.reconcileEvery, "payments-reconcile-every", "METERD_PAYMENTS_RECONCILE_EVERY", 5*time.Minute, "how often the reconciliation job runs")
	f.Duration(&c.keyRetention, "payments-key-retention", "METERD_PAYMENTS_KEY_RETENTION", 72*time.Hour, "how long Idempotency-Keys are kept and replayed")
	f.String(&c.maxAdvance, "payments-max-advance", "METERD_PAYMENTS_MAX_ADVANCE", "100000", "largest overpayment accepted as advance, in the bill's currency")
}

func (c paymentsConfig) Validate() error {
	var errs []error
	if c.razorpayKeyID != "" && (c.razorpayKeySecret == "" || len(c.razorpayWebhookSecrets) == 0) {
		errs = append(errs, errors.New("razorpay: --razorpay-key-secret and --razorpay-webhook-secrets are required with a key id"))
	}
	if c.stripeSecretKey != "" && len(c.stripeWebhookSecrets) == 0 {
		errs = append(errs, errors.New("stripe: --stripe-webhook-secrets is required with a secret key"))
	}
	for _, r := range c.routes {
		if m, p, ok := strings.Cut(r, "="); !ok || m == "" || p == "" {
			errs = append(errs, fmt.Errorf("payments-routes: %q is not method=provider", r))
		}
	}
	if c.timeout <= 0 || c.breakerOpenFor <= 0 || c.pendingAfter <= 0 || c.abandonAfter <= 0 || c.reconcileEvery <= 0 || c.keyRetention <= 0 {
		errs = append(errs, errors.New("payments: durations must be positive"))
	}
	if c.breakerFailures <= 0 {
		errs = append(errs, errors.New("payments-breaker-failures must be positive"))
	}
	if d, err := decimal.NewFromString(c.maxAdvance); err != nil || d.IsNegative() {
		errs = append(errs, fmt.Errorf("payments-max-advance %q is not an amount", c.maxAdvance))
	}
	if c.sandboxSecret != "" && len(c.sandboxSecret) < 16 {
		errs = append(errs, errors.New("payments-sandbox-secret must have at least 16 characters"))
	}
	return errors.Join(errs...)
}

// enabled reports whether any provider is configured.
func (c paymentsConfig) enabled() bool {
	return c.sandbox || c.razorpayKeyID != "" || c.stripeSecretKey != ""
}

// devDefaults turns the sandbox on, reachable at the dev server's own
// address, unless its URLs are configured.
func (c *paymentsConfig) devDefaults() {
	c.sandbox = true
	c.sandboxAtServer = c.sandboxWebhookURL == "" && c.sandboxCheckout == ""
}

// paymentsComponent builds the payment service when the API services
// start (it needs the pool and the field keyring) and runs the sandbox's
// webhook sender once the HTTP server listens.
type paymentsComponent struct {
	cfg       paymentsConfig
	publicURL string
	// serverAddr is the HTTP server's address once it listens.
	serverAddr func() string
	log        *slog.Logger
	reg        prometheus.Registerer
	breakers   *prometheus.GaugeVec

	svc *payment.Service
	sbx *sandbox.Gateway
}

func newPaymentsComponent(cfg paymentsConfig, publicURL string, serverAddr func() string, log *slog.Logger, reg prometheus.Registerer) (*paymentsComponent, error) {
	p := &paymentsComponent{cfg: cfg, publicURL: strings.TrimRight(publicURL, "/"), serverAddr: serverAddr, log: log.With("component", "payments"), reg: reg}
	p.breakers = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "meterd", Subsystem: "payments", Name: "provider_breaker_state",
		Help: "Circuit breaker state of each payment provider: 0 closed, 1 half-open, 2 open."}, []string{"provider"})
	if reg != nil {
		if err := reg.Register(p.breakers); err != nil {
			return nil, fmt.Errorf("payments metrics: %w", err)
		}
	}
	return p, nil
}

// build makes the service on pool with ring sealing saved-method tokens.
// It returns nil services when no provider is configured.
func (p *paymentsComponent) build(pool *pgxpool.Pool, ring *keyring.Ring) (*payment.Service, api.SandboxCheckout, error) {
	if !p.cfg.enabled() {
		p.log.Info("payments off: no provider configured (--payments-sandbox, --razorpay-key-id or --stripe-secret-key)")
		return nil, nil, nil
	}
	var provs []payment.Provider
	if p.cfg.razorpayKeyID != "" {
		rp, err := razorpay.New(razorpay.Config{BaseURL: p.cfg.razorpayBaseURL, KeyID: p.cfg.razorpayKeyID, KeySecret: p.cfg.razorpayKeySecret,
			WebhookSecrets: p.cfg.razorpayWebhookSecrets})
		if err != nil {
			return nil, nil, err
		}
		provs = append(provs, rp)
	}
	if p.cfg.stripeSecretKey != "" {
		sp, err := stripe.New(stripe.Config{BaseURL: p.cfg.stripeBaseURL, SecretKey: p.cfg.stripeSecretKey, PublishableKey: p.cfg.stripePublishableKey,
			WebhookSecrets: p.cfg.stripeWebhookSecrets})
		if err != nil {
			return nil, nil, err
		}
		provs = append(provs, sp)
	}
	if p.cfg.sandbox {
		secret := p.cfg.sandboxSecret
		if secret == "" {
			var b [24]byte
			if _, err := rand.Read(b[:]); err != nil {
				return nil, nil, err
			}
			secret = hex.EncodeToString(b[:])
		}
		hook, checkout := p.cfg.sandboxWebhookURL, p.cfg.sandboxCheckout
		if hook == "" {
			hook = p.publicURL + "/api/webhooks/sandbox"
		}
		if checkout == "" {
			checkout = p.publicURL + "/sandbox/checkout"
		}
		sbx, err := sandbox.New(sandbox.Config{Secret: secret, WebhookURL: hook, CheckoutURL: checkout, Logger: p.log.With("provider", "sandbox")})
		if err != nil {
			return nil, nil, err
		}
		p.sbx = sbx
		provs = append(provs, sbx)
	}
	guarded := make([]payment.Provider, len(provs))
	for i, pr := range provs {
		g, err := guard.Wrap(pr, guard.Config{Timeout: p.cfg.timeout, Failures: uint32(p.cfg.breakerFailures), OpenFor: p.cfg.breakerOpenFor, Logger: p.log,
			OnStateChange: func(name string, _, to gobreaker.State) { p.breakers.WithLabelValues(name).Set(float64(to)) }})
		if err != nil {
			return nil, nil, err
		}
		p.breakers.WithLabelValues(pr.Name()).Set(0)
		guarded[i] = g
	}
	routes := map[payment.Method]string{}
	for _, r := range p.cfg.routes {
		m, prov, _ := strings.Cut(r, "=")
		routes[payment.Method(strings.TrimSpace(m))] = strings.TrimSpace(prov)
	}
	ledger := billingpg.NewStore(pool, billingpg.Deps{Outbox: billingOutbox{}, Audit: billingAudit{}, Logger: p.log})
	store, err := paymentpg.New(pool, paymentpg.Deps{Ledger: ledger, Outbox: billingOutbox{}, Audit: billingAudit{}, Sealer: ring, Logger: p.log})
	if err != nil {
		return nil, nil, err
	}
	ret := "/"
	if p.publicURL != "" {
		ret = p.publicURL + "/"
	}
	svc, err := payment.New(store, guarded, payment.Config{Routes: routes, KeyRetention: p.cfg.keyRetention, PendingAfter: p.cfg.pendingAfter,
		AbandonAfter: p.cfg.abandonAfter, MaxAdvance: decimal.RequireFromString(p.cfg.maxAdvance), DefaultReturnURL: ret, Logger: p.log})
	if err != nil {
		return nil, nil, err
	}
	p.svc = svc
	p.log.Info("payments on", "providers", strings.Join(svc.Providers(), ","))
	if p.sbx == nil {
		return svc, nil, nil
	}
	return svc, p.sbx, nil
}

// Start runs the sandbox's webhook sender (after the HTTP server, so its
// first delivery finds meterd listening).
func (p *paymentsComponent) Start(ctx context.Context) error {
	if p.sbx == nil {
		return nil
	}
	if p.cfg.sandboxAtServer && p.serverAddr != nil {
		p.sbx.SetBaseURL("http://" + p.serverAddr())
	}
	return p.sbx.Start(ctx)
}

// Stop ends the sandbox's webhook sender.
func (p *paymentsComponent) Stop(ctx context.Context) error {
	if p.sbx == nil {
		return nil
	}
	return p.sbx.Stop(ctx)
}

// banner describes the sandbox for 'meterd dev'.
func (p *paymentsComponent) banner() string {
	if p.svc == nil {
		return ""
	}
	s := fmt.Sprintf("  Payments    providers %s; POST /api/payments (Idempotency-Key), webhooks at /api/webhooks/<provider>\n", strings.Join(p.svc.Providers(), ", "))
	s += "              no bill to pay yet? as admin: POST /api/billing/runs {\"period\": \"<today>..<today>\"}, then pay GET /api/bills as the consumer\n"
	if p.sbx != nil {
		s += fmt.Sprintf("              sandbox checkout %s?order=…: test instruments card_visa, card_declined, netbanking_success, wallet_success, upi_success, upi_failure, abandon …\n",
			p.sbx.CheckoutURL())
	}
	return s
}

// paymentsRegistrar registers the reconciliation job (periodic, over every
// tenant, on the leader) and the purge of old Idempotency-Keys.
func paymentsRegistrar(p *paymentsComponent) registrar {
	return func(_ context.Context, w *river.Workers) ([]*river.PeriodicJob, error) {
		river.AddWorker(w, &reconcileWorker{p: p})
		river.AddWorker(w, &purgeKeysWorker{p: p})
		return []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(p.cfg.reconcileEvery),
				func() (river.JobArgs, *river.InsertOpts) { return reconcileArgs{}, nil },
				&river.PeriodicJobOpts{ID: reconcileArgs{}.Kind()}),
			river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
				func() (river.JobArgs, *river.InsertOpts) { return purgeKeysArgs{}, nil },
				&river.PeriodicJobOpts{ID: purgeKeysArgs{}.Kind()}),
		}, nil
	}
}

type reconcileArgs struct{}

func (reconcileArgs) Kind() string { return "payments.reconcile" }

// InsertOpts keeps one reconciliation queued or running at a time.
func (reconcileArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled}}}
}

type reconcileWorker struct {
	river.WorkerDefaults[reconcileArgs]
	p *paymentsComponent
}

func (w *reconcileWorker) Work(ctx context.Context, _ *river.Job[reconcileArgs]) error {
	if w.p.svc == nil {
		return nil
	}
	run, err := w.p.svc.Reconcile(ctx, 0, "schedule", nil)
	if err != nil {
		return err
	}
	if run.Checked > 0 || run.Refunds > 0 {
		w.p.log.Info("payments reconciled", "run", run.ID, "checked", run.Checked, "settled", run.Settled, "failed", run.Failed,
			"expired", run.Expired, "refunds", run.Refunds, "errors", run.Errors)
	}
	return nil
}

type purgeKeysArgs struct{}

func (purgeKeysArgs) Kind() string { return "payments.purge_idempotency_keys" }

type purgeKeysWorker struct {
	river.WorkerDefaults[purgeKeysArgs]
	p *paymentsComponent
}

func (w *purgeKeysWorker) Work(ctx context.Context, _ *river.Job[purgeKeysArgs]) error {
	if w.p.svc == nil {
		return nil
	}
	n, err := w.p.svc.PurgeKeys(ctx)
	if err == nil && n > 0 {
		w.p.log.Info("purged idempotency keys", "keys", n)
	}
	return err
}
