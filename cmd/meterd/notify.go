package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/meterd/meterd/alerts"
	"github.com/meterd/meterd/alerts/channel/email"
	"github.com/meterd/meterd/alerts/channel/fcm"
	"github.com/meterd/meterd/alerts/channel/twilio"
	"github.com/meterd/meterd/alerts/channel/webhook"
	"github.com/meterd/meterd/alerts/detect"
	"github.com/meterd/meterd/alerts/devsink"
	"github.com/meterd/meterd/alerts/jobs"
	"github.com/meterd/meterd/alerts/notify"
	alertspg "github.com/meterd/meterd/alerts/postgres"
	"github.com/meterd/meterd/alerts/reminder"
	"github.com/meterd/meterd/alerts/service"
	"github.com/meterd/meterd/alerts/template"
	"github.com/meterd/meterd/api"
	"github.com/meterd/meterd/api/keyring"
)

// notifyConfig is the configuration of notifications, reminders and the
// abnormal-usage detector.
type notifyConfig struct {
	disabled bool
	engine   notify.Config
	jobs     jobs.Config
	detect   detect.Config

	smtp email.Config
	// sms and push name the provider: twilio | webhook | none (sms);
	// fcm | webhook | none (push).
	sms, push         string
	twilio            twilio.Config
	smsWebhook        webhook.Config
	pushWebhook       webhook.Config
	fcmProject        string
	fcmCredentials    string // service-account key file
	fcmBaseURL        string
	maxAttempts       int
	disableDetector   bool
	disableReminders  bool
	billPDFAttachment bool

	// dev is set by 'meterd dev': every channel goes to the dev sinks.
	dev *devNotifications
}

func (c *notifyConfig) register(f *flags) {
	f.Bool(&c.disabled, "notify-disabled", "METERD_NOTIFY_DISABLED", false, "do not deliver notifications from this instance (the outbox waits for one that does)")
	f.String(&c.engine.From, "notify-from", "METERD_NOTIFY_FROM", "meterd <noreply@localhost>", "default email sender (a tenant's branding overrides it)")
	f.String(&c.engine.MessageIDDomain, "notify-message-id-domain", "METERD_NOTIFY_MESSAGE_ID_DOMAIN", notify.DefaultMessageDomain, "right part of email Message-IDs")
	f.Int(&c.maxAttempts, "notify-max-attempts", "METERD_NOTIFY_MAX_ATTEMPTS", notify.DefaultMaxAttempts, "attempts per delivery before it becomes a dead letter")
	f.Duration(&c.engine.Backoff, "notify-backoff", "METERD_NOTIFY_BACKOFF", notify.DefaultBackoff, "delay before the second attempt (doubles per attempt)")
	f.Duration(&c.engine.MaxBackoff, "notify-max-backoff", "METERD_NOTIFY_MAX_BACKOFF", notify.DefaultMaxBackoff, "longest delay between attempts")
	f.Duration(&c.engine.SendTimeout, "notify-send-timeout", "METERD_NOTIFY_SEND_TIMEOUT", notify.DefaultSendTimeout, "bound on one provider call")
	f.Int(&c.engine.BreakerTrip, "notify-breaker-trip", "METERD_NOTIFY_BREAKER_TRIP", notify.DefaultBreakerTrip, "consecutive provider failures that open its circuit")
	f.Duration(&c.engine.BreakerOpen, "notify-breaker-open", "METERD_NOTIFY_BREAKER_OPEN", notify.DefaultBreakerOpen, "how long an open circuit waits before a probe")
	f.Duration(&c.jobs.PumpEvery, "notify-pump-every", "METERD_NOTIFY_PUMP_EVERY", 2*time.Second, "how often the outbox is fanned out and due deliveries queued")
	f.Duration(&c.jobs.RemindersEvery, "reminders-every", "METERD_REMINDERS_EVERY", 15*time.Minute, "how often due-date reminders and escalations are checked")
	f.Bool(&c.disableReminders, "reminders-disabled", "METERD_REMINDERS_DISABLED", false, "do not schedule bill reminders")
	f.Bool(&c.billPDFAttachment, "notify-bill-pdf", "METERD_NOTIFY_BILL_PDF", true, "attach the bill PDF to bill.issued emails")

	f.String(&c.smtp.Host, "smtp-host", "METERD_SMTP_HOST", "", "SMTP server for email (none: email is off)")
	f.Int(&c.smtp.Port, "smtp-port", "METERD_SMTP_PORT", 0, "SMTP port (default 587, or 465 with implicit TLS)")
	f.String(&c.smtp.TLS, "smtp-tls", "METERD_SMTP_TLS", email.TLSMandatory, "SMTP TLS: mandatory (STARTTLS), opportunistic, implicit or none")
	f.String(&c.smtp.Username, "smtp-username", "METERD_SMTP_USERNAME", "", "SMTP AUTH user")
	f.String(&c.smtp.Password, "smtp-password", "METERD_SMTP_PASSWORD", "", "SMTP AUTH password (prefer the environment variable)")
	f.String(&c.smtp.Auth, "smtp-auth", "METERD_SMTP_AUTH", "auto", "SMTP AUTH mechanism: plain, login, cram-md5 or auto")

	f.String(&c.sms, "sms-provider", "METERD_SMS_PROVIDER", "none", "SMS provider: twilio, webhook or none")
	f.String(&c.twilio.AccountSID, "twilio-account-sid", "METERD_TWILIO_ACCOUNT_SID", "", "Twilio account SID (AC…)")
	f.String(&c.twilio.AuthToken, "twilio-auth-token", "METERD_TWILIO_AUTH_TOKEN", "", "Twilio auth token (prefer the environment variable)")
	f.String(&c.twilio.From, "twilio-from", "METERD_TWILIO_FROM", "", "Twilio sender number (E.164)")
	f.String(&c.twilio.MessagingServiceSID, "twilio-messaging-service", "METERD_TWILIO_MESSAGING_SERVICE", "", "Twilio messaging service SID (MG…), instead of a sender number")
	f.String(&c.twilio.StatusCallback, "twilio-status-callback", "METERD_TWILIO_STATUS_CALLBACK", "", "URL Twilio reports delivery status to")
	f.String(&c.twilio.BaseURL, "twilio-base-url", "METERD_TWILIO_BASE_URL", "", "Twilio API root (default https://api.twilio.com)")
	f.String(&c.smsWebhook.URL, "sms-webhook-url", "METERD_SMS_WEBHOOK_URL", "", "URL of the signed SMS webhook provider")
	f.String(&c.smsWebhook.Secret, "sms-webhook-secret", "METERD_SMS_WEBHOOK_SECRET", "", "signing secret of the SMS webhook (prefer the environment variable)")

	f.String(&c.push, "push-provider", "METERD_PUSH_PROVIDER", "none", "push provider: fcm, webhook or none")
	f.String(&c.fcmProject, "fcm-project", "METERD_FCM_PROJECT", "", "Firebase project id")
	f.String(&c.fcmCredentials, "fcm-credentials", "METERD_FCM_CREDENTIALS", "", "Google service-account key file (JSON) for FCM")
	f.String(&c.fcmBaseURL, "fcm-base-url", "METERD_FCM_BASE_URL", "", "FCM API root (default https://fcm.googleapis.com)")
	f.String(&c.pushWebhook.URL, "push-webhook-url", "METERD_PUSH_WEBHOOK_URL", "", "URL of the signed push webhook provider")
	f.String(&c.pushWebhook.Secret, "push-webhook-secret", "METERD_PUSH_WEBHOOK_SECRET", "", "signing secret of the push webhook (prefer the environment variable)")

	f.Bool(&c.disableDetector, "detector-disabled", "METERD_DETECTOR_DISABLED", false, "do not scan for abnormal usage")
	f.Duration(&c.jobs.HourlyScanEvery, "detect-hourly-every", "METERD_DETECT_HOURLY_EVERY", 5*time.Minute, "how often completed hours are checked against each meter's baseline")
	f.Duration(&c.jobs.DailyScanEvery, "detect-daily-every", "METERD_DETECT_DAILY_EVERY", time.Hour, "how often the daily rules (thresholds, stuck, tamper, sanctioned load) and liveness run")
	f.Int(&c.detect.StuckDays, "detect-stuck-days", "METERD_DETECT_STUCK_DAYS", 2, "whole days of frozen registers that make a meter stuck")
	f.Float(&c.detect.DeviationZ, "detect-deviation-z", "METERD_DETECT_DEVIATION_Z", 6, "robust z (median/MAD spreads) above which an hour deviates from the meter's baseline")
	f.Float(&c.detect.SilentFactor, "detect-silent-factor", "METERD_DETECT_SILENT_FACTOR", 4, "a meter is silent after this many expected intervals without a reading")
	f.Int(&c.detect.LookbackDays, "detect-lookback-days", "METERD_DETECT_LOOKBACK_DAYS", 90, "days of daily rollups the first scan of a tenant reads")
}

func (c notifyConfig) Validate() error {
	var errs []error
	errs = append(errs, c.engine.Validate(), c.jobs.Validate(), c.detect.Validate())
	if c.maxAttempts < 1 || c.maxAttempts > 100 {
		errs = append(errs, errors.New("notify-max-attempts must be 1–100"))
	}
	if c.smtp.Host != "" {
		errs = append(errs, c.smtp.Validate())
	}
	switch c.sms {
	case "none", "":
	case "twilio":
		errs = append(errs, c.twilio.Validate())
	case "webhook":
		w := c.smsWebhook
		w.Channel = alerts.ChannelSMS
		errs = append(errs, w.Validate())
	default:
		errs = append(errs, fmt.Errorf("sms-provider %q is not twilio, webhook or none", c.sms))
	}
	switch c.push {
	case "none", "":
	case "fcm":
		if c.fcmProject == "" || c.fcmCredentials == "" {
			errs = append(errs, errors.New("push-provider fcm needs --fcm-project and --fcm-credentials"))
		}
	case "webhook":
		w := c.pushWebhook
		w.Channel = alerts.ChannelPush
		errs = append(errs, w.Validate())
	default:
		errs = append(errs, fmt.Errorf("push-provider %q is not fcm, webhook or none", c.push))
	}
	return errors.Join(errs...)
}

// senders builds the configured providers.
func (c notifyConfig) senders(log *slog.Logger) ([]notify.Sender, error) {
	if c.dev != nil {
		return c.dev.senders(log)
	}
	var out []notify.Sender
	if c.smtp.Host != "" {
		s, err := email.New(c.smtp)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	switch c.sms {
	case "twilio":
		s, err := twilio.New(c.twilio)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	case "webhook":
		w := c.smsWebhook
		w.Channel = alerts.ChannelSMS
		s, err := webhook.New(w)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	switch c.push {
	case "fcm":
		b, err := os.ReadFile(c.fcmCredentials)
		if err != nil {
			return nil, fmt.Errorf("fcm credentials: %w", err)
		}
		key, err := fcm.ParseServiceAccount(b)
		if err != nil {
			return nil, err
		}
		ts, err := fcm.NewServiceAccount(key, nil, nil)
		if err != nil {
			return nil, err
		}
		s, err := fcm.New(fcm.Config{BaseURL: c.fcmBaseURL, ProjectID: c.fcmProject, Tokens: ts})
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	case "webhook":
		w := c.pushWebhook
		w.Channel = alerts.ChannelPush
		s, err := webhook.New(w)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// billDocuments attaches bill PDFs with billing's renderer.
type billDocuments struct{ b *billingAPI }

func (d billDocuments) BillPDF(ctx context.Context, tenantID, billID int64) (notify.Attachment, error) {
	data, bill, err := d.b.BillPDF(ctx, tenantID, 0, billID)
	if err != nil {
		return notify.Attachment{}, err
	}
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ' ' {
			return '-'
		}
		return r
	}, bill.Number)
	return notify.Attachment{Name: "bill-" + name + ".pdf", ContentType: "application/pdf", Data: data}, nil
}

// alertsParts are the notification engine, reminder scheduler and
// detector built on an open pool.
type alertsParts struct {
	store    *alertspg.Store
	engine   *notify.Engine
	reminder *reminder.Scheduler
	scanner  *detect.Scanner
	ring     *keyring.Ring
}

// alertsRegistrar registers the notification, reminder and detector jobs.
func alertsRegistrar(pools *poolComponent, c notifyConfig, apiCfg apiConfig, log *slog.Logger, reg prometheus.Registerer, parts *alertsParts) registrar {
	return func(_ context.Context, w *river.Workers) ([]*river.PeriodicJob, error) {
		log := log.With("component", "notify")
		store := alertspg.New(pools.pool)
		parts.store = store
		comp := jobs.Components{Logger: log}
		if !c.disabled {
			keys, err := keyring.LoadKeyFile(apiCfg.fieldKeysFile)
			if err != nil {
				return nil, fmt.Errorf("notifications: field keys: %w", err)
			}
			ring, err := keyring.New(keys)
			if err != nil {
				return nil, fmt.Errorf("notifications: %w", err)
			}
			parts.ring = ring
			senders, err := c.senders(log)
			if err != nil {
				return nil, fmt.Errorf("notifications: %w", err)
			}
			if len(senders) == 0 {
				log.Warn("no notification provider is configured (--smtp-host, --sms-provider, --push-provider): the outbox waits for an instance that has one")
			} else {
				tpl, err := template.New()
				if err != nil {
					return nil, err
				}
				cfg := c.engine
				cfg.PublicURL, cfg.Logger = apiCfg.publicURL, log
				cfg.MaxAttempts = map[alerts.Channel]int{}
				for _, ch := range alerts.Channels() {
					cfg.MaxAttempts[ch] = c.maxAttempts
				}
				deps := notify.Deps{Store: store, Templates: tpl, Opener: ring, Senders: senders, Bills: store, Metrics: notify.NewMetrics(reg)}
				if c.billPDFAttachment {
					b, err := newBillingAPI(pools.pool, ring, log)
					if err != nil {
						return nil, err
					}
					deps.Documents = billDocuments{b}
				}
				engine, err := notify.New(cfg, deps)
				if err != nil {
					return nil, err
				}
				parts.engine = engine
				comp.Notifier = engine
				names := make([]string, len(senders))
				for i, s := range senders {
					names[i] = string(s.Channel()) + "=" + s.Provider()
				}
				log.Info("notifications enabled", "providers", strings.Join(names, ","))
			}
		}
		if !c.disableReminders {
			parts.reminder = reminder.NewScheduler(store, nil, log.With("component", "reminders"))
			comp.Reminders = parts.reminder
		}
		if !c.disableDetector {
			sc, err := detect.NewScanner(c.detect, store, nil, log.With("component", "detector"))
			if err != nil {
				return nil, err
			}
			parts.scanner = sc
			comp.Scanner = sc
		}
		return jobs.AddWorkers(w, c.jobs, comp)
	}
}

// devNotifications makes notifications observable in 'meterd dev': an SMTP
// sink on loopback whose messages are logged (recipient and subject) and
// kept, log-only SMS and push providers, and a page listing all of them.
type devNotifications struct {
	log  *devsink.Log
	smtp *devsink.SMTP
	lg   *slog.Logger
}

func newDevNotifications(log *slog.Logger) *devNotifications {
	l := devsink.NewLog(500)
	return &devNotifications{log: l, lg: log, smtp: devsink.NewSMTP(devsink.SMTPConfig{Addr: "127.0.0.1:0", Logger: log}, l)}
}

func (d *devNotifications) Start(ctx context.Context) error { return d.smtp.Start(ctx) }
func (d *devNotifications) Stop(ctx context.Context) error  { return d.smtp.Stop(ctx) }

func (d *devNotifications) senders(log *slog.Logger) ([]notify.Sender, error) {
	mail, err := email.New(email.Config{Host: "127.0.0.1", Port: d.smtp.Port(), TLS: email.TLSNone, Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	return []notify.Sender{mail, devsink.NewSender(alerts.ChannelSMS, d.log, log), devsink.NewSender(alerts.ChannelPush, d.log, log)}, nil
}

// mountDevNotifications serves the captured messages at /dev/notifications
// (JSON; ?format=html for a page). Only 'meterd dev' mounts it.
func mountDevNotifications(app *fiber.App, d *devNotifications) {
	app.Get("/dev/notifications", adaptor.HTTPHandler(devsink.Handler(d.log)))
}

func (d *devNotifications) banner(apiAddr string) string {
	return fmt.Sprintf("  Notices     http://%s/dev/notifications?format=html  (email to the SMTP sink on %s, SMS and push logged; nothing leaves this machine)\n",
		apiAddr, d.smtp.Addr())
}

// notificationsAPI is the API's alerts and notifications service: alerts'
// store, push tokens sealed with the field keyring, the template set for
// checking overrides.
func notificationsAPI(pool *pgxpool.Pool, ring *keyring.Ring) (api.Notifications, error) {
	tpl, err := template.New()
	if err != nil {
		return nil, err
	}
	return service.New(alertspg.New(pool), ring, tpl, nil), nil
}
