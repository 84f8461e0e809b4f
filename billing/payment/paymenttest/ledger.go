package paymenttest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
)

// Ledger puts billing's ledger rows in a test database as billing/postgres
// stores them: a tenant's consumer with connections, demands with their
// details, and issued bills.
type Ledger struct {
	t          testing.TB
	pool       *pgxpool.Pool
	TenantID   int64
	TenantCode string
	seq        int
}

// NewLedger uses tenant code (creating it, in Asia/Kolkata and INR, if it
// does not exist).
func NewLedger(t testing.TB, pool *pgxpool.Pool, code string) *Ledger {
	t.Helper()
	l := &Ledger{t: t, pool: pool, TenantCode: code}
	l.must(pool.QueryRow(context.Background(), `INSERT INTO tenants (code, name, time_zone, currency) VALUES ($1, $2, 'Asia/Kolkata', 'INR')
		ON CONFLICT (code) DO UPDATE SET code = excluded.code RETURNING id`, code, strings.ToUpper(code[:1])+code[1:]+" Utility").Scan(&l.TenantID))
	return l
}

func (l *Ledger) must(err error) {
	l.t.Helper()
	if err != nil {
		l.t.Fatal(err)
	}
}

// Consumer creates a consumer user (for bills that belong to nobody who
// logs in) and returns its id.
func (l *Ledger) Consumer(email string) int64 {
	l.t.Helper()
	var id int64
	l.must(l.pool.QueryRow(context.Background(), `INSERT INTO users (tenant_id, email, role, password_hash) VALUES ($1, $2, 'consumer', '$argon2id$test')
		RETURNING id`, l.TenantID, email).Scan(&id))
	return id
}

// Connection gives user a property with an active connection of service
// and returns the connection's id.
func (l *Ledger) Connection(userID int64, service string) int64 {
	l.t.Helper()
	ctx := context.Background()
	l.seq++
	var prop, conn int64
	l.must(l.pool.QueryRow(ctx, `INSERT INTO properties (tenant_id, user_id, label, address_enc) VALUES ($1, $2, 'Home', '\x00') RETURNING id`,
		l.TenantID, userID).Scan(&prop))
	l.must(l.pool.QueryRow(ctx, `INSERT INTO connections (tenant_id, property_id, service, consumer_code, status, tariff_plan)
		VALUES ($1, $2, $3, $4, 'active', 'test') RETURNING id`, l.TenantID, prop, service, fmt.Sprintf("%s%06d", strings.ToUpper(service[:1]), l.seq*1000+int(prop))).Scan(&conn))
	return conn
}

// Detail is a demand detail: head, category, tax amount and what is
// collected already.
type Detail struct {
	Head      string
	Category  string
	Amount    string
	Collected string // "" for 0
}

// Demand inserts a demand of the connection for [from, to] with details
// and returns its id.
func (l *Ledger) Demand(conn int64, from, to, due string, details ...Detail) int64 {
	l.t.Helper()
	ctx := context.Background()
	var id int64
	l.must(l.pool.QueryRow(ctx, `INSERT INTO demands (tenant_id, connection_id, service, consumer_code, period_from, period_to, due_date, tariff_plan)
		SELECT tenant_id, id, service, consumer_code, $2, $3, $4, 'test' FROM connections WHERE id = $1 RETURNING id`, conn, from, to, due).Scan(&id))
	for _, d := range details {
		coll := d.Collected
		if coll == "" {
			coll = "0"
		}
		_, err := l.pool.Exec(ctx, `INSERT INTO demand_details (demand_id, tax_head, category, tax_amount, collection_amount, source) VALUES ($1, $2, $3, $4::numeric, $5::numeric, 'calculation')`,
			id, d.Head, d.Category, d.Amount, coll)
		l.must(err)
	}
	return id
}

// BillSpec is an issued bill.
type BillSpec struct {
	Period         [2]string // from, to
	IssueDate, Due string
	Current        string
	Arrears        string // "" for 0
	Advance        string // "" for 0
	Total          string
	MinimumPayable string // "" for the total
	Status         string // "" for issued
}

// Bill issues a bill for the demand and returns its id and number.
func (l *Ledger) Bill(conn, demand, userID int64, b BillSpec) (int64, string) {
	l.t.Helper()
	ctx := context.Background()
	def := func(s, d string) decimal.Decimal {
		if s == "" {
			s = d
		}
		return decimal.RequireFromString(s)
	}
	if b.Status == "" {
		b.Status = "issued"
	}
	var seq int
	l.must(l.pool.QueryRow(ctx, `INSERT INTO bill_number_counters (tenant_id, financial_year, last_seq) VALUES ($1, 2024, 1)
		ON CONFLICT (tenant_id, financial_year) DO UPDATE SET last_seq = bill_number_counters.last_seq + 1 RETURNING last_seq`, l.TenantID).Scan(&seq))
	number := fmt.Sprintf("%s/2024-25/%06d", strings.ToUpper(l.TenantCode), seq)
	// The bills.lines column is newer than some schemas.
	var hasLines bool
	l.must(l.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'bills' AND column_name = 'lines')`).Scan(&hasLines))
	cols, vals := "", ""
	if hasLines {
		cols, vals = ", lines", ", '[]'"
	}
	var id int64
	l.must(l.pool.QueryRow(ctx, `INSERT INTO bills (tenant_id, connection_id, demand_id, number, financial_year, seq, service, consumer_code, consumer_user_id,
			consumer_name, tariff_plan, currency, period_from, period_to, issue_date, due_date, current_charges, arrears, advance, total, minimum_payable, status`+cols+`)
		SELECT c.tenant_id, c.id, $2, $3, 2024, $4, c.service, c.consumer_code, $5, 'Asha Rao', 'test', 'INR', $6, $7, $8, $9, $10, $11, $12, $13, $14, $15`+vals+`
		FROM connections c WHERE c.id = $1 RETURNING id`,
		conn, demand, number, seq, userID, b.Period[0], b.Period[1], b.IssueDate, b.Due,
		def(b.Current, "0"), def(b.Arrears, "0"), def(b.Advance, "0"), def(b.Total, "0"), def(b.MinimumPayable, b.Total), b.Status).Scan(&id))
	return id, number
}

// Outstanding returns what a demand still owes, per head.
func (l *Ledger) Outstanding(demand int64) map[string]decimal.Decimal {
	l.t.Helper()
	rows, err := l.pool.Query(context.Background(), `SELECT tax_head, sum(tax_amount - collection_amount)::text FROM demand_details WHERE demand_id = $1 GROUP BY tax_head`, demand)
	l.must(err)
	defer rows.Close()
	out := map[string]decimal.Decimal{}
	for rows.Next() {
		var head, amount string
		l.must(rows.Scan(&head, &amount))
		out[head] = decimal.RequireFromString(amount)
	}
	l.must(rows.Err())
	return out
}

// Electricity is an electricity connection with an unpaid April bill of
// 515.00 (energy 450, fixed 40, duty 24.50, round-off 0.50) and a May bill
// of 530.00 carrying April as arrears with a late-payment surcharge of
// 4.06: arrears 519.06, total 1049.06, minimum payable 50% (524.53).
type Electricity struct {
	Connection             int64
	April, May             int64 // demands
	AprilBill, MayBill     int64
	AprilNumber, MayNumber string
}

// ElectricityWithArrears seeds the Electricity fixture for user.
func (l *Ledger) ElectricityWithArrears(userID int64) Electricity {
	l.t.Helper()
	var e Electricity
	e.Connection = l.Connection(userID, "electricity")
	e.April = l.Demand(e.Connection, "2024-04-01", "2024-04-30", "2024-05-20",
		Detail{"energy", "CHARGES", "450.00", ""}, Detail{"fixed", "FEE", "40.00", ""}, Detail{"ed", "TAX", "24.50", ""},
		Detail{"round_off", "CHARGES", "0.50", ""}, Detail{"late_payment_surcharge", "PENALTY", "4.06", ""})
	e.AprilBill, e.AprilNumber = l.Bill(e.Connection, e.April, userID, BillSpec{Period: [2]string{"2024-04-01", "2024-04-30"}, IssueDate: "2024-05-05", Due: "2024-05-20",
		Current: "515.00", Total: "515.00", Status: "overdue"})
	e.May = l.Demand(e.Connection, "2024-05-01", "2024-05-31", "2024-06-20",
		Detail{"energy", "CHARGES", "465.00", ""}, Detail{"fixed", "FEE", "40.00", ""}, Detail{"ed", "TAX", "25.25", ""}, Detail{"round_off", "CHARGES", "-0.25", ""})
	e.MayBill, e.MayNumber = l.Bill(e.Connection, e.May, userID, BillSpec{Period: [2]string{"2024-05-01", "2024-05-31"}, IssueDate: "2024-06-05", Due: "2024-06-20",
		Current: "530.00", Arrears: "519.06", Total: "1049.06", MinimumPayable: "524.53"})
	return e
}

// Sewerage is a sewerage connection with one bill of 60.00 (SW_CHARGE),
// the shape of TV18's previous demand before its payment.
type Sewerage struct {
	Connection int64
	Demand     int64
	Bill       int64
	Number     string
}

// SewerageTV18 seeds the Sewerage fixture for user, with the bill's
// minimum payable ("" for the total: no part payment).
func (l *Ledger) SewerageTV18(userID int64, minimumPayable string) Sewerage {
	l.t.Helper()
	var s Sewerage
	s.Connection = l.Connection(userID, "sewerage")
	s.Demand = l.Demand(s.Connection, "2024-04-01", "2024-06-30", "2024-07-15", Detail{"SW_CHARGE", "CHARGES", "60.00", ""})
	s.Bill, s.Number = l.Bill(s.Connection, s.Demand, userID, BillSpec{Period: [2]string{"2024-04-01", "2024-06-30"}, IssueDate: "2024-07-01", Due: "2024-07-15",
		Current: "60.00", Total: "60.00", MinimumPayable: minimumPayable})
	return s
}
