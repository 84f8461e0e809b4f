package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/meterd/meterd/api"
	"github.com/meterd/meterd/api/account"
	accountpg "github.com/meterd/meterd/api/account/postgres"
	"github.com/meterd/meterd/api/keyring"
	"github.com/meterd/meterd/api/support"
	supportpg "github.com/meterd/meterd/api/support/postgres"
	usagesvc "github.com/meterd/meterd/api/usage"
	usagepg "github.com/meterd/meterd/api/usage/postgres"
	"github.com/meterd/meterd/deploy/schema"
)

// apiConfig is the configuration of the accounts, support desk and usage
// services behind the API.
type apiConfig struct {
	// jwtKeysFile and fieldKeysFile are key files ("<id> <base64 key>" per
	// line, the first current, mode 0600): HS256 signing keys for access
	// tokens, and AES-256 keys for sealed personal data.
	jwtKeysFile, fieldKeysFile string
	defaultTenant              string
	publicURL                  string
	accessTTL                  time.Duration
	refreshTTL                 time.Duration
	sessionMaxAge              time.Duration
	sessionCheckTTL            time.Duration
	argonMemoryKiB             int
	argonPasses                int
	argonLanes                 int
	hashConcurrency            int
	allowUnverifiedLogin       bool
	logVerificationLinks       bool
}

func (c *apiConfig) register(f *flags) {
	f.String(&c.jwtKeysFile, "jwt-keys-file", "METERD_JWT_KEYS_FILE", "", "file of access-token signing keys, '<id> <base64 key>' per line, first current (mode 0600)")
	f.String(&c.fieldKeysFile, "field-keys-file", "METERD_FIELD_KEYS_FILE", "", "file of AES-256 keys sealing personal data, '<1-255> <base64 key>' per line, first current (mode 0600)")
	f.String(&c.defaultTenant, "default-tenant", "METERD_DEFAULT_TENANT", "", "tenant code used when a registration or login names none")
	f.String(&c.publicURL, "public-url", "METERD_PUBLIC_URL", "http://localhost:8080", "externally visible base URL, for links in emails")
	f.Duration(&c.accessTTL, "access-token-ttl", "METERD_ACCESS_TOKEN_TTL", 15*time.Minute, "lifetime of an access token")
	f.Duration(&c.refreshTTL, "refresh-token-ttl", "METERD_REFRESH_TOKEN_TTL", 7*24*time.Hour, "how long an unused refresh token stays valid")
	f.Duration(&c.sessionMaxAge, "session-max-age", "METERD_SESSION_MAX_AGE", 30*24*time.Hour, "absolute lifetime of a login session")
	f.Duration(&c.sessionCheckTTL, "session-check-ttl", "METERD_SESSION_CHECK_TTL", 10*time.Second, "how long session revocations may take to reach other instances (cache of session state)")
	f.Int(&c.argonMemoryKiB, "argon2-memory-kib", "METERD_ARGON2_MEMORY_KIB", 64*1024, "argon2id memory per password hash, KiB")
	f.Int(&c.argonPasses, "argon2-passes", "METERD_ARGON2_PASSES", 2, "argon2id passes")
	f.Int(&c.argonLanes, "argon2-lanes", "METERD_ARGON2_LANES", 2, "argon2id lanes")
	f.Int(&c.hashConcurrency, "password-hash-concurrency", "METERD_PASSWORD_HASH_CONCURRENCY", 2, "password hashes computed at once (each holds argon2-memory-kib)")
	f.Bool(&c.allowUnverifiedLogin, "allow-unverified-login", "METERD_ALLOW_UNVERIFIED_LOGIN", false, "let users log in before verifying their email address")
}

func (c apiConfig) Validate() error {
	var errs []error
	if c.jwtKeysFile == "" {
		errs = append(errs, errors.New("no JWT signing keys: set --jwt-keys-file (create one with 'meterd keys generate --type jwt')"))
	}
	if c.fieldKeysFile == "" {
		errs = append(errs, errors.New("no field-encryption keys: set --field-keys-file (create one with 'meterd keys generate --type field')"))
	}
	for _, d := range []time.Duration{c.accessTTL, c.refreshTTL, c.sessionMaxAge} {
		if d <= 0 {
			errs = append(errs, errors.New("token lifetimes must be positive"))
			break
		}
	}
	if c.argonMemoryKiB <= 0 || c.argonPasses <= 0 || c.argonLanes <= 0 || c.argonLanes > 255 {
		errs = append(errs, errors.New("argon2 parameters must be positive (lanes at most 255)"))
	}
	errs = append(errs, positive("password-hash-concurrency", c.hashConcurrency))
	return errors.Join(errs...)
}

// apiComponent builds the services on the open pool and mounts the routes
// before the HTTP server starts.
type apiComponent struct {
	cfg      apiConfig
	pools    *poolComponent
	srv      *api.Server
	upkeep   schema.UpkeepConfig
	log      *slog.Logger
	services api.Services
	// payments, when set, adds the payment routes (built on the pool and
	// the field keyring).
	payments *paymentsComponent
}

func (a *apiComponent) Start(ctx context.Context) error {
	jwtKeys, err := keyring.LoadKeyFile(a.cfg.jwtKeysFile)
	if err != nil {
		return fmt.Errorf("jwt keys: %w", err)
	}
	fieldKeys, err := keyring.LoadKeyFile(a.cfg.fieldKeysFile)
	if err != nil {
		return fmt.Errorf("field keys: %w", err)
	}
	ring, err := keyring.New(fieldKeys)
	if err != nil {
		return err
	}
	tokens, err := account.NewTokens(account.TokenConfig{Keys: jwtKeys, AccessTTL: a.cfg.accessTTL})
	if err != nil {
		return err
	}
	hasher, err := account.NewHasher(account.HasherConfig{
		Params: account.Argon2Params{MemoryKiB: uint32(a.cfg.argonMemoryKiB), Passes: uint32(a.cfg.argonPasses),
			Lanes: uint8(a.cfg.argonLanes), SaltBytes: 16, HashBytes: 32},
		MaxConcurrent: a.cfg.hashConcurrency,
	})
	if err != nil {
		return err
	}
	pool := a.pools.pool
	accounts, err := account.New(accountpg.New(pool), tokens, hasher, ring, account.Config{
		DefaultTenant:        a.cfg.defaultTenant,
		RefreshTTL:           a.cfg.refreshTTL,
		SessionMaxAge:        a.cfg.sessionMaxAge,
		SessionCheckTTL:      a.cfg.sessionCheckTTL,
		AllowUnverifiedLogin: a.cfg.allowUnverifiedLogin,
		PublicURL:            a.cfg.publicURL,
		LogVerificationLinks: a.cfg.logVerificationLinks,
		Logger:               a.log.With("component", "accounts"),
	})
	if err != nil {
		return err
	}
	desk, err := support.New(supportpg.New(pool), support.Config{})
	if err != nil {
		return err
	}
	st, err := schema.LoadStorage(ctx, pool)
	if err != nil {
		return err
	}
	up := schema.NewUpkeep(pool, st, a.upkeep)
	use, err := usagesvc.New(usagepg.New(pool, func(ctx context.Context, from, to time.Time) error {
		_, err := up.EnsurePartitions(ctx, from, to)
		return err
	}), usagesvc.Config{})
	if err != nil {
		return err
	}
	bills, err := newBillingAPI(pool, ring, a.log.With("component", "billing"))
	if err != nil {
		return err
	}
	a.services = api.Services{Accounts: accounts, Support: desk, Usage: use, Billing: bills, Municipal: bills.store}
	if a.services.Notifications, err = notificationsAPI(pool, ring); err != nil {
		return err
	}
	if a.payments != nil {
		if a.services.Payments, a.services.Sandbox, err = a.payments.build(pool, ring); err != nil {
			return fmt.Errorf("payments: %w", err)
		}
	}
	if err := a.srv.Mount(a.services); err != nil {
		return err
	}
	// The web portal (/ and /staff) on the same services; tenants are
	// looked up for their names, time zones and currencies.
	_, err = a.srv.MountPortal(a.services, accountpg.New(pool), api.PortalConfig{})
	return err
}

func (a *apiComponent) Stop(context.Context) error { return nil }

// apiRegistrar registers the API's periodic jobs: purging ended sessions
// and tokens, and assigning queued support tickets (a backstop: tickets are
// assigned at once whenever staff free up). They run on the API's
// services, which exist once the component has started.
func apiRegistrar(a *apiComponent, log *slog.Logger) registrar {
	return func(_ context.Context, w *river.Workers) ([]*river.PeriodicJob, error) {
		river.AddWorker(w, &funcWorker[purgeArgs]{fn: func(ctx context.Context) error {
			n, err := a.services.Accounts.PurgeExpired(ctx)
			if n > 0 {
				log.Info("purged ended sessions and tokens", "rows", n)
			}
			return err
		}})
		river.AddWorker(w, &funcWorker[assignArgs]{fn: func(ctx context.Context) error {
			n, err := a.services.Support.AssignQueued(ctx)
			if n > 0 {
				log.Info("assigned queued support tickets", "tickets", n)
			}
			return err
		}})
		return []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
				func() (river.JobArgs, *river.InsertOpts) { return purgeArgs{}, nil },
				&river.PeriodicJobOpts{ID: purgeArgs{}.Kind(), RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(time.Minute),
				func() (river.JobArgs, *river.InsertOpts) { return assignArgs{}, nil },
				&river.PeriodicJobOpts{ID: assignArgs{}.Kind()}),
		}, nil
	}
}

type purgeArgs struct{}

func (purgeArgs) Kind() string { return "accounts.purge_expired" }

type assignArgs struct{}

func (assignArgs) Kind() string { return "support.assign_queued" }

// funcWorker is a job whose work is fn.
type funcWorker[T river.JobArgs] struct {
	river.WorkerDefaults[T]
	fn func(context.Context) error
}

func (w *funcWorker[T]) Work(ctx context.Context, _ *river.Job[T]) error { return w.fn(ctx) }

// devKeys points the API at key files in the dev data directory, creating
// them (mode 0600) on first use, unless key files were configured.
func devKeys(c *apiConfig, dataDir string, log *slog.Logger) error {
	dir := filepath.Join(dataDir, "keys")
	if c.jwtKeysFile == "" {
		c.jwtKeysFile = filepath.Join(dir, "jwt.keys")
		if _, created, err := keyring.EnsureKeyFile(c.jwtKeysFile, "dev-1", 32, "meterd dev: HS256 access-token signing keys; first is current"); err != nil {
			return err
		} else if created {
			log.Info("generated a JWT signing key", "file", c.jwtKeysFile)
		}
	}
	if c.fieldKeysFile == "" {
		c.fieldKeysFile = filepath.Join(dir, "field.keys")
		if _, created, err := keyring.EnsureKeyFile(c.fieldKeysFile, "1", keyring.KeySize, "meterd dev: AES-256 field-encryption keys; first is current"); err != nil {
			return err
		} else if created {
			log.Info("generated a field-encryption key", "file", c.fieldKeysFile)
		}
	}
	return nil
}

// runKeys is 'meterd keys': generate key files, and re-encrypt sealed data
// under the current field key after a rotation.
func runKeys(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || (args[0] != "generate" && args[0] != "reencrypt") {
		fmt.Fprint(e.stderr, "Usage: meterd keys generate --type jwt|field --id ID --out FILE\n       meterd keys reencrypt [flags]\n\n"+
			"generate writes a new key file (mode 0600); to rotate, put the new key line first in the existing file.\n"+
			"reencrypt rewrites every sealed value under the current (first) field key, so older keys can be removed.\n")
		return errors.New("keys: say generate or reencrypt")
	}
	if args[0] == "generate" {
		var typ, id, out string
		f := newFlags("keys generate", "Usage: meterd keys generate --type jwt|field --id ID --out FILE", e.getenv, e.stderr)
		f.String(&typ, "type", "", "field", "jwt (HS256 signing) or field (AES-256 encryption)")
		f.String(&id, "id", "", "", "key id: a name for jwt keys, 1-255 for field keys (default: 1, or a date for jwt)")
		f.String(&out, "out", "", "", "file to create (must not exist)")
		if err := f.Parse(args[1:]); err != nil {
			return err
		}
		if out == "" || (typ != "jwt" && typ != "field") {
			return errors.New("keys generate: --out and --type jwt|field are required")
		}
		if id == "" {
			id = "1"
			if typ == "jwt" {
				id = time.Now().UTC().Format("20060102")
			}
		}
		size := keyring.KeySize
		if _, created, err := keyring.EnsureKeyFile(out, id, size, "meterd "+typ+" keys; the first line is the current key"); err != nil {
			return err
		} else if !created {
			return fmt.Errorf("keys generate: %s exists; add new keys to it by hand (first line is current)", out)
		}
		fmt.Fprintf(e.stdout, "wrote %s key %q to %s\n", typ, id, out)
		return nil
	}
	var c serveConfig
	f := newFlags("keys reencrypt", "Usage: meterd keys reencrypt [flags]\n\nRe-encrypts sealed personal data under the current field key.", e.getenv, e.stderr)
	c.log.register(f, "text")
	c.db.register(f)
	c.api.register(f)
	if err := f.Parse(args[1:]); err != nil {
		return err
	}
	if err := errors.Join(c.db.Validate(), c.api.Validate()); err != nil {
		return err
	}
	log, err := c.log.logger(e.stderr)
	if err != nil {
		return err
	}
	pools := &poolComponent{url: c.db.url, maxConns: c.db.maxConns}
	if err := pools.Start(ctx); err != nil {
		return err
	}
	defer func() { _ = pools.Stop(context.WithoutCancel(ctx)) }()
	srv, err := api.New(api.Config{Addr: "127.0.0.1:0"}, api.Deps{Logger: log})
	if err != nil {
		return err
	}
	a := &apiComponent{cfg: c.api, pools: pools, srv: srv, log: log}
	if err := a.Start(ctx); err != nil {
		return err
	}
	n, err := a.services.Accounts.Reencrypt(ctx)
	if err != nil {
		return fmt.Errorf("reencrypt (%d values done): %w", n, err)
	}
	fmt.Fprintf(e.stdout, "re-encrypted %d sealed values under the current key\n", n)
	return nil
}

// demoLogins are the accounts 'meterd dev' seeds, for the banner.
type demoLogins struct {
	tenant       string
	password     string
	consumer     string
	official     string
	support      string
	admin        string
	consumerCode string
	meter        string
	tenantID     int64
	connectionID int64 // the consumer's electricity connection
}

func (d demoLogins) banner() string {
	if d.tenant == "" {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  Demo logins (tenant %q, password %s):\n", d.tenant, d.password)
	fmt.Fprintf(&b, "    consumer  %-28s property with electricity connection %s, meter %s\n", d.consumer, d.consumerCode, d.meter)
	fmt.Fprintf(&b, "    official  %-28s department metering\n", d.official)
	fmt.Fprintf(&b, "    support   %-28s all ticket categories\n", d.support)
	fmt.Fprintf(&b, "    admin     %s\n", d.admin)
	return b.String()
}
