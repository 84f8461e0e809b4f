package localpg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNoServer means no PostgreSQL server binaries were found.
var ErrNoServer = errors.New("no PostgreSQL ≥ 15 server binaries found (on Debian: apt-get install postgresql-15)")

// Config describes a private cluster.
type Config struct {
	// DataDir is the cluster's data directory. Required. If the OS user that
	// runs postgres cannot reach it (a clone under /root, say), the cluster
	// lives under /var/tmp and DataDir becomes a symlink to it.
	DataDir string
	// BinDir holds initdb and postgres. Default: the newest
	// /usr/lib/postgresql/N/bin with N ≥ 15.
	BinDir string
	// Port on 127.0.0.1. Default 0: a free port is picked.
	Port int
	// PortFallback picks a free port when Port is taken instead of failing.
	PortFallback bool
	// OSUser runs initdb and postgres when the caller is root. Default "postgres".
	OSUser string
	// Password of the postgres role over TCP; empty means trust
	// authentication, acceptable only for throwaway test clusters.
	Password string
	// Durable keeps fsync, synchronous commit and full-page writes on. Test
	// clusters turn it off for speed.
	Durable bool
	// Machine sizes the settings. Zero value: DetectMachine().
	Machine Machine
	// MaxConnections is the server's max_connections. Default 100.
	MaxConnections int
	// Settings override or extend the computed settings.
	Settings map[string]string
	// Log receives the server's output. Default: postgres.log beside DataDir.
	Log io.Writer
	// StartTimeout bounds initdb plus start-up. Default 60 s.
	StartTimeout time.Duration
	// Logger reports what the cluster does. Default: discard.
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("localpg: DataDir is required")
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("localpg: port %d out of range", c.Port)
	}
	if c.MaxConnections < 0 {
		return errors.New("localpg: MaxConnections must not be negative")
	}
	return nil
}

// Cluster is a running server started by Start.
type Cluster struct {
	cfg       Config
	dataDir   string // resolved, reachable path
	port      int
	timescale bool
	cmd       *exec.Cmd
	exited    chan struct{}
	exitErr   error
	logFile   *os.File
	log       *slog.Logger
}

// Start initialises the data directory if it is empty, starts the server and
// waits until it accepts connections. Existing data is reused.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.OSUser == "" {
		cfg.OSUser = "postgres"
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = 100
	}
	if cfg.Machine == (Machine{}) {
		cfg.Machine = DetectMachine()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()

	bin := cfg.BinDir
	if bin == "" {
		var err error
		if bin, err = FindBinDir(); err != nil {
			return nil, err
		}
		cfg.BinDir = bin
	}
	cred, err := credential(cfg.OSUser)
	if err != nil {
		return nil, err
	}
	dataDir, err := prepareDataDir(cfg.DataDir, cred, log)
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, dataDir: dataDir, exited: make(chan struct{}), log: log}
	c.timescale = ExtensionAvailable(bin, "timescaledb")

	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx, cred); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("localpg: %w", err)
	}
	c.stopStale(ctx, cred)

	port, err := choosePort(cfg.Port, cfg.PortFallback)
	if err != nil {
		return nil, err
	}
	c.port = port
	if err := c.start(cred); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx); err != nil {
		_ = c.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	log.Info("postgres started", "data", dataDir, "port", port, "timescaledb", c.timescale)
	return c, nil
}

// FindBinDir returns the newest /usr/lib/postgresql/N/bin holding a server
// of version 15 or later.
func FindBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	type cand struct {
		major int
		dir   string
	}
	var cs []cand
	for _, p := range dirs {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		if err == nil && v >= 15 {
			cs = append(cs, cand{v, filepath.Dir(p)})
		}
	}
	if len(cs) == 0 {
		return "", ErrNoServer
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].major > cs[j].major })
	return cs[0].dir, nil
}

// ExtensionAvailable reports whether the server in binDir has the named
// extension installed (its control file is in the share directory).
func ExtensionAvailable(binDir, name string) bool {
	out, err := exec.Command(filepath.Join(binDir, "pg_config"), "--sharedir").Output()
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(strings.TrimSpace(string(out)), "extension", name+".control"))
	return err == nil
}

// Port is the TCP port on 127.0.0.1 the server listens on.
func (c *Cluster) Port() int { return c.port }

// DataDir is the resolved data directory.
func (c *Cluster) DataDir() string { return c.dataDir }

// Timescale reports whether the server preloads the timescaledb extension.
func (c *Cluster) Timescale() bool { return c.timescale }

// URL returns a connection URL for the database as the postgres role.
func (c *Cluster) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	if c.cfg.Password != "" {
		u.User = url.UserPassword("postgres", c.cfg.Password)
	} else {
		u.User = url.User("postgres")
	}
	return u.String()
}

// Exited is closed when the server process ends.
func (c *Cluster) Exited() <-chan struct{} { return c.exited }

// Stop shuts the server down: a fast shutdown (SIGINT) first, then an
// immediate one (SIGQUIT) and a kill if ctx runs out. It returns once the
// process is gone.
func (c *Cluster) Stop(ctx context.Context) error {
	if c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	defer func() {
		if c.logFile != nil {
			_ = c.logFile.Close()
		}
	}()
	select {
	case <-c.exited:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	grace := 20 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		grace = max(time.Until(dl)*3/4, 100*time.Millisecond)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.exited:
		c.log.Info("postgres stopped", "data", c.dataDir)
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	_ = c.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-c.exited:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
	}
	return errors.New("localpg: server needed an immediate shutdown")
}

func (c *Cluster) initdb(ctx context.Context, cred *syscall.Credential) error {
	args := []string{"-D", c.dataDir, "-U", "postgres", "-E", "UTF8", "--no-locale", "--auth-local=trust"}
	var pwFile string
	if c.cfg.Password != "" {
		f, err := os.CreateTemp("", "localpg-pw-*")
		if err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
		pwFile = f.Name()
		defer func() { _ = os.Remove(pwFile) }()
		_, werr := f.WriteString(c.cfg.Password + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("localpg: write password file: %w", werr)
		}
		if cred != nil {
			if err := os.Chown(pwFile, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("localpg: %w", err)
			}
		}
		args = append(args, "--auth-host=scram-sha-256", "--pwfile="+pwFile)
	} else {
		args = append(args, "--auth-host=trust")
	}
	if !c.cfg.Durable {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.cfg.BinDir, "initdb"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Env = serverEnv
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("localpg: initdb: %w\n%s", err, out)
	}
	c.log.Info("initialised a new PostgreSQL cluster", "data", c.dataDir)
	return nil
}

// stopStale stops a server left running on this data directory by a
// previous process that died without stopping it.
func (c *Cluster) stopStale(ctx context.Context, cred *syscall.Credential) {
	b, err := os.ReadFile(filepath.Join(c.dataDir, "postmaster.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		return // stale file; postgres removes it itself
	}
	c.log.Warn("stopping a server left running on this data directory", "pid", pid)
	cmd := exec.CommandContext(ctx, filepath.Join(c.cfg.BinDir, "pg_ctl"), "stop", "-D", c.dataDir, "-m", "fast", "-w")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	_ = cmd.Run()
}

func (c *Cluster) settings() map[string]string {
	s := Tune(c.cfg.Machine, c.cfg.MaxConnections, c.timescale)
	s["listen_addresses"] = "127.0.0.1"
	s["port"] = strconv.Itoa(c.port)
	s["unix_socket_directories"] = ""
	s["logging_collector"] = "off"
	s["log_min_messages"] = "warning"
	s["log_line_prefix"] = "%m [%p] "
	if c.timescale {
		s["shared_preload_libraries"] = "timescaledb"
		s["timescaledb.telemetry_level"] = "off"
	}
	if !c.cfg.Durable {
		s["fsync"] = "off"
		s["synchronous_commit"] = "off"
		s["full_page_writes"] = "off"
	}
	for k, v := range c.cfg.Settings {
		s[k] = v
	}
	return s
}

func (c *Cluster) start(cred *syscall.Credential) error {
	s := c.settings()
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	args := []string{"-D", c.dataDir}
	for _, k := range keys {
		args = append(args, "-c", k+"="+s[k])
	}
	out := c.cfg.Log
	if out == nil {
		// Next to the requested data directory, where people look, even
		// when the data itself had to live elsewhere.
		requested, err := filepath.Abs(c.cfg.DataDir)
		if err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
		f, err := os.OpenFile(filepath.Join(filepath.Dir(requested), "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("localpg: open server log: %w", err)
		}
		c.logFile = f
		out = f
	}
	// Not CommandContext: the server must outlive the start-up context and
	// stop only through Stop, after everything using it has stopped.
	cmd := exec.Command(filepath.Join(c.cfg.BinDir, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = serverEnv
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred,
		// Its own process group, so a terminal's Ctrl-C reaches meterd only
		// and meterd stops the server last, in order.
		Setpgid: true,
		// If meterd dies without stopping it, the server shuts down at once.
		Pdeathsig: syscall.SIGQUIT,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("localpg: start postgres: %w", err)
	}
	c.cmd = cmd
	go func() {
		c.exitErr = cmd.Wait()
		close(c.exited)
	}()
	return nil
}

func (c *Cluster) waitReady(ctx context.Context) error {
	url := c.URL("postgres")
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			err = conn.Ping(ctx)
			_ = conn.Close(ctx)
			if err == nil {
				return nil
			}
		}
		last = err
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000") {
			// The server is up but refuses our password: waiting will not
			// change that.
			return fmt.Errorf("localpg: the cluster in %s refuses the configured password: %w", c.dataDir, err)
		}
		select {
		case <-c.exited:
			return fmt.Errorf("localpg: postgres exited during start-up (%v); see its log", c.exitErr)
		case <-ctx.Done():
			return fmt.Errorf("localpg: postgres not ready: %w", last)
		case <-tick.C:
		}
	}
}

// serverEnv is the whole environment of initdb and postgres: a C locale
// and a plain PATH, nothing inherited, so no credential or setting of the
// calling process leaks into the server.
var serverEnv = []string{"LC_ALL=C", "LANG=C", "PATH=/usr/local/bin:/usr/bin:/bin"}

// credential returns the OS identity to run the server as: the named user
// when running as root, else nil (the current user).
func credential(name string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("localpg: running as root needs the %q OS user to run postgres: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("localpg: user %q has a non-numeric uid or gid", name)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// prepareDataDir creates the data directory with the right owner and returns
// the path postgres should use. When the server's user cannot traverse the
// requested path, the directory is placed under /var/tmp instead and the
// requested path becomes a symlink to it, so data is still reused next time.
func prepareDataDir(dir string, cred *syscall.Credential, log *slog.Logger) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("localpg: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return "", fmt.Errorf("localpg: %w", err)
	}
	if cred != nil && !traversable(filepath.Dir(abs), cred) {
		sum := sha256.Sum256([]byte(abs))
		alt := filepath.Join("/var/tmp", "meterd-pg-"+hex.EncodeToString(sum[:6]))
		log.Info("the postgres OS user cannot reach the data directory; keeping the cluster elsewhere", "requested", abs, "actual", alt)
		if _, err := os.Lstat(abs); errors.Is(err, os.ErrNotExist) {
			// The link is gone: whoever deleted the data directory meant
			// to start afresh, so a cluster left at the relocated place
			// (with its old password) is an orphan, not data to reuse.
			if _, err := os.Stat(alt); err == nil {
				log.Info("removing the cluster of a deleted data directory", "path", alt)
				if err := os.RemoveAll(alt); err != nil {
					return "", fmt.Errorf("localpg: remove orphaned cluster: %w", err)
				}
			}
			if err := os.Symlink(alt, abs); err != nil {
				return "", fmt.Errorf("localpg: %w", err)
			}
		}
		abs = alt
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", fmt.Errorf("localpg: %w", err)
	}
	if cred != nil {
		if err := os.Chown(abs, int(cred.Uid), int(cred.Gid)); err != nil {
			return "", fmt.Errorf("localpg: %w", err)
		}
	}
	if err := os.Chmod(abs, 0o700); err != nil {
		return "", fmt.Errorf("localpg: %w", err)
	}
	return abs, nil
}

// traversable reports whether cred's user may search every directory from
// the root down to dir.
func traversable(dir string, cred *syscall.Credential) bool {
	for p := dir; ; p = filepath.Dir(p) {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			return false
		}
		mode := st.Mode
		ok := mode&0o001 != 0 ||
			(st.Uid == cred.Uid && mode&0o100 != 0) ||
			(st.Gid == cred.Gid && mode&0o010 != 0)
		if !ok {
			return false
		}
		if p == "/" || p == "." {
			return true
		}
	}
}

func choosePort(want int, fallback bool) (int, error) {
	if want != 0 {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(want)))
		if err == nil {
			_ = l.Close()
			return want, nil
		}
		if !fallback {
			return 0, fmt.Errorf("localpg: port %d: %w", want, err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localpg: pick a port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
