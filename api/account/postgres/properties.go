package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/meterd/meterd/api/account"
	"github.com/meterd/meterd/api/audit"
	auditpg "github.com/meterd/meterd/api/audit/postgres"

	"github.com/meterd/meterd/api/internal/sqlwhere"
)

const connectionSelect = `SELECT c.id, c.tenant_id, c.property_id, p.user_id, c.service, c.consumer_code, c.status,
		coalesce(c.tariff_plan, ''), c.connection_type, coalesce(c.meter_number, ''), c.sanctioned_load_kw::text,
		coalesce(c.usage_category, ''), coalesce(c.building_type, ''), c.water_closets, c.toilets, c.road_cutting,
		c.plot_size_m2::text, c.connected_at, c.disconnected_at,
		i.id, i.meter_id, m.external_id, m.serial, i.installed_at, i.initial_import_wh, i.initial_export_wh, i.reason
	FROM connections c
	JOIN properties p ON p.id = c.property_id
	LEFT JOIN meter_installations i ON i.connection_id = c.id AND i.removed_at IS NULL
	LEFT JOIN meters m ON m.id = i.meter_id`

func decimalPtr(s *string) (*decimal.Decimal, error) {
	if s == nil {
		return nil, nil
	}
	d, err := decimal.NewFromString(*s)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func scanConnection(row pgx.Row) (account.Connection, error) {
	var c account.Connection
	var load, plot *string
	var road []byte
	var instID, meterID *int64
	var ext, serial, reason *string
	var installedAt *time.Time
	var initImp, initExp *int64
	err := row.Scan(&c.ID, &c.TenantID, &c.PropertyID, &c.UserID, &c.Service, &c.ConsumerCode, &c.Status,
		&c.TariffPlan, &c.ConnectionType, &c.MeterNumber, &load, &c.UsageCategory, &c.BuildingType,
		&c.WaterClosets, &c.Toilets, &road, &plot, &c.ConnectedAt, &c.DisconnectedAt,
		&instID, &meterID, &ext, &serial, &installedAt, &initImp, &initExp, &reason)
	if err != nil {
		return c, err
	}
	if c.SanctionedLoadKW, err = decimalPtr(load); err != nil {
		return c, err
	}
	if c.PlotSizeM2, err = decimalPtr(plot); err != nil {
		return c, err
	}
	if err := json.Unmarshal(road, &c.RoadCutting); err != nil {
		return c, fmt.Errorf("road cutting: %w", err)
	}
	if instID != nil {
		c.Meter = &account.Installation{ID: *instID, ConnectionID: c.ID, MeterID: *meterID, MeterExternalID: *ext,
			MeterSerial: *serial, InstalledAt: *installedAt, InitialImportWh: initImp, InitialExportWh: initExp, Reason: *reason}
	}
	return c, nil
}

func collectConnections(rows pgx.Rows) ([]account.Connection, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (account.Connection, error) { return scanConnection(r) })
}

// ListProperties implements account.Store: the page of properties and
// their connections in one round trip (a pipelined batch of two queries
// over the same conditions).
func (s *Store) ListProperties(ctx context.Context, scope account.Scope, ownerID int64, p account.Page) ([]account.SealedProperty, error) {
	var w sqlwhere.Where
	w.Add("tenant_id = ?", scope.TenantID)
	if scope.UserID != 0 {
		w.Add("user_id = ?", scope.UserID)
	}
	if ownerID != 0 {
		w.Add("user_id = ?", ownerID)
	}
	w.Add("id > ?", p.After)
	page := `SELECT id, tenant_id, user_id, label, address_enc, created_at FROM properties
		WHERE ` + w.String() + ` ORDER BY id LIMIT ` + w.Next(p.Limit)
	var props []account.SealedProperty
	var conns []account.Connection
	batch := &pgx.Batch{}
	batch.Queue(page, w.Args()...).Query(func(rows pgx.Rows) error {
		var err error
		props, err = pgx.CollectRows(rows, scanProperty)
		return err
	})
	batch.Queue(connectionSelect+` WHERE c.property_id IN (SELECT id FROM (`+page+`) pg) ORDER BY c.id`, w.Args()...).Query(func(rows pgx.Rows) error {
		var err error
		conns, err = collectConnections(rows)
		return err
	})
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return nil, translate(err, "list properties")
	}
	byProp := map[int64]int{}
	for i, p := range props {
		byProp[p.ID] = i
	}
	for _, c := range conns {
		// A property created between the two statements may show up in
		// the second only; it is on the next page.
		if i, ok := byProp[c.PropertyID]; ok {
			props[i].Connections = append(props[i].Connections, c)
		}
	}
	return props, nil
}

func scanProperty(r pgx.CollectableRow) (account.SealedProperty, error) {
	var p account.SealedProperty
	err := r.Scan(&p.ID, &p.TenantID, &p.UserID, &p.Label, &p.Address, &p.CreatedAt)
	return p, err
}

// Property implements account.Store.
func (s *Store) Property(ctx context.Context, scope account.Scope, id int64) (account.SealedProperty, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, tenant_id, user_id, label, address_enc, created_at FROM properties
		WHERE tenant_id = $1 AND ($2 = 0 OR user_id = $2) AND id = $3`, scope.TenantID, scope.UserID, id)
	if err != nil {
		return account.SealedProperty{}, translate(err, "property")
	}
	p, err := pgx.CollectExactlyOneRow(rows, scanProperty)
	if err != nil {
		return p, notFound(err, account.ErrPropertyNotFound, "property")
	}
	rows, err = s.pool.Query(ctx, connectionSelect+` WHERE c.property_id = $1 ORDER BY c.id`, id)
	if err != nil {
		return p, translate(err, "property connections")
	}
	p.Connections, err = collectConnections(rows)
	return p, translate(err, "property connections")
}

// CreateProperty implements account.Store.
func (s *Store) CreateProperty(ctx context.Context, np account.NewProperty, seal func(int64) ([]byte, error), e audit.Entry) (int64, error) {
	var id int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('properties', 'id'))`).Scan(&id); err != nil {
			return err
		}
		sealed, err := seal(id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO properties (id, tenant_id, user_id, label, address_enc) VALUES ($1, $2, $3, $4, $5)`,
			id, np.TenantID, np.UserID, np.Label, sealed); err != nil {
			return err
		}
		var connIDs []int64
		for _, c := range np.Connections {
			cid, err := insertConnection(ctx, tx, np.TenantID, id, c)
			if err != nil {
				return err
			}
			connIDs = append(connIDs, cid)
		}
		e.After = map[string]any{"connection_ids": connIDs}
		return writeAudit(ctx, tx, e, nil, "properties", "id", id)
	})
	return id, translate(err, "create property")
}

var codePrefix = map[account.ServiceType]string{
	account.ServiceElectricity: "E",
	account.ServiceWater:       "W",
	account.ServiceSewerage:    "S",
}

// insertConnection inserts a connection and, when its meter number names
// a provisioned meter that is installed nowhere, installs it.
func insertConnection(ctx context.Context, tx pgx.Tx, tenantID, propertyID int64, c account.NewConnection) (int64, error) {
	var id int64
	if err := tx.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('connections', 'id'))`).Scan(&id); err != nil {
		return 0, err
	}
	code := c.ConsumerCode
	if code == "" {
		code = fmt.Sprintf("%s%08d", codePrefix[c.Service], id)
	}
	var meterID int64
	if c.MeterNumber != "" {
		var installedOn *int64
		err := tx.QueryRow(ctx, `SELECT m.id, i.connection_id FROM meters m
			LEFT JOIN meter_installations i ON i.meter_id = m.id AND i.removed_at IS NULL
			WHERE m.tenant_id = $1 AND m.serial = $2 AND m.removed_at IS NULL
			FOR UPDATE OF m`, tenantID, c.MeterNumber).Scan(&meterID, &installedOn)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			meterID = 0
		case err != nil:
			return 0, err
		case installedOn != nil:
			return 0, account.ErrDuplicateProperty
		}
	}
	status := account.ConnectionPending
	if meterID != 0 || c.ConnectionType == "Non Metered" {
		status = account.ConnectionActive
	}
	if c.Now.IsZero() {
		c.Now = time.Now().UTC()
	}
	road, err := json.Marshal(roadCutting(c.RoadCutting))
	if err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO connections (id, tenant_id, property_id, service, consumer_code, status,
			tariff_plan, connection_type, meter_number, sanctioned_load_kw, usage_category, water_closets, toilets,
			road_cutting, plot_size_m2)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::numeric, $11, $12, $13, $14, $15::numeric)`,
		id, tenantID, propertyID, c.Service, code, status, nullText(c.TariffPlan), c.ConnectionType,
		nullText(c.MeterNumber), decimalText(c.SanctionedLoadKW), nullText(c.UsageCategory), c.WaterClosets, c.Toilets,
		road, decimalText(c.PlotSizeM2)); err != nil {
		return 0, err
	}
	if meterID != 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO meter_installations (tenant_id, connection_id, meter_id, installed_at, reason, installed_by)
			VALUES ($1, $2, $3, $4, 'new', $5)`, tenantID, id, meterID, c.Now, nullID(c.InstalledBy)); err != nil {
			return 0, err
		}
	}
	return id, nil
}

func roadCutting(rc []account.RoadCutting) []account.RoadCutting {
	if rc == nil {
		return []account.RoadCutting{}
	}
	return rc
}

func decimalText(d *decimal.Decimal) *string {
	if d == nil {
		return nil
	}
	s := d.String()
	return &s
}

func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// AddConnection implements account.Store.
func (s *Store) AddConnection(ctx context.Context, scope account.Scope, propertyID int64, c account.NewConnection, e audit.Entry) (int64, error) {
	var id int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM properties WHERE tenant_id = $1 AND ($2 = 0 OR user_id = $2) AND id = $3 FOR UPDATE`,
			scope.TenantID, scope.UserID, propertyID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return account.ErrPropertyNotFound
		}
		if err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM connections WHERE property_id = $1 AND service = $2 AND status <> 'closed')`,
			propertyID, c.Service).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return fmt.Errorf("%w: the property already has an open %s connection", account.ErrConflict, c.Service)
		}
		if id, err = insertConnection(ctx, tx, scope.TenantID, propertyID, c); err != nil {
			return err
		}
		return writeAudit(ctx, tx, e, nil, "connections", "id", id)
	})
	if errors.Is(err, account.ErrPropertyNotFound) {
		return 0, err
	}
	return id, translate(err, "add connection")
}

// Connection implements account.Store.
func (s *Store) Connection(ctx context.Context, scope account.Scope, id int64) (account.Connection, error) {
	c, err := scanConnection(s.pool.QueryRow(ctx, connectionSelect+` WHERE c.tenant_id = $1 AND ($2 = 0 OR p.user_id = $2) AND c.id = $3`,
		scope.TenantID, scope.UserID, id))
	return c, notFound(err, account.ErrConnectionNotFound, "connection")
}

// UpdateConnection implements account.Store.
func (s *Store) UpdateConnection(ctx context.Context, tenantID, id int64, p account.ConnectionPatch, e audit.Entry) (account.Connection, error) {
	var c account.Connection
	err := s.tx(ctx, func(tx pgx.Tx) error {
		before, err := auditpg.Snapshot(ctx, tx, "connections", "id", id)
		if err != nil {
			return err
		}
		if before == nil {
			return account.ErrConnectionNotFound
		}
		var road []byte
		if p.RoadCutting != nil {
			if road, err = json.Marshal(roadCutting(*p.RoadCutting)); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `UPDATE connections SET
				status = coalesce($3, status),
				tariff_plan = CASE WHEN $4::text IS NULL THEN tariff_plan ELSE nullif($4, '') END,
				connection_type = coalesce($5, connection_type),
				sanctioned_load_kw = coalesce($6::numeric, sanctioned_load_kw),
				usage_category = CASE WHEN $7::text IS NULL THEN usage_category ELSE nullif($7, '') END,
				water_closets = coalesce($8, water_closets),
				toilets = coalesce($9, toilets),
				road_cutting = coalesce($10::jsonb, road_cutting),
				plot_size_m2 = coalesce($11::numeric, plot_size_m2),
				disconnected_at = CASE WHEN $3 IN ('disconnected', 'closed') THEN coalesce(disconnected_at, now())
					WHEN $3 IN ('active', 'pending') THEN NULL ELSE disconnected_at END,
				updated_at = now()
			WHERE tenant_id = $1 AND id = $2`,
			tenantID, id, (*string)(p.Status), p.TariffPlan, p.ConnectionType, decimalText(p.SanctionedLoadKW),
			p.UsageCategory, p.WaterClosets, p.Toilets, road, decimalText(p.PlotSizeM2))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return account.ErrConnectionNotFound
		}
		if p.Status != nil && *p.Status == account.ConnectionClosed {
			if _, err := tx.Exec(ctx, `UPDATE meter_installations SET removed_at = greatest(now(), installed_at + interval '1 microsecond'),
				removal_reason = 'closed' WHERE connection_id = $1 AND removed_at IS NULL`, id); err != nil {
				return err
			}
		}
		if err := writeAudit(ctx, tx, e, before, "connections", "id", id); err != nil {
			return err
		}
		c, err = scanConnection(tx.QueryRow(ctx, connectionSelect+` WHERE c.id = $1`, id))
		return err
	})
	if errors.Is(err, account.ErrConnectionNotFound) {
		return c, err
	}
	return c, translate(err, "update connection")
}

const installationColumns = `i.id, i.connection_id, i.meter_id, m.external_id, m.serial, i.installed_at, i.removed_at,
	i.initial_import_wh, i.initial_export_wh, i.final_import_wh, i.final_export_wh, i.reason, coalesce(i.removal_reason, '')`

func scanInstallation(r pgx.Row) (account.Installation, error) {
	var i account.Installation
	err := r.Scan(&i.ID, &i.ConnectionID, &i.MeterID, &i.MeterExternalID, &i.MeterSerial, &i.InstalledAt, &i.RemovedAt,
		&i.InitialImportWh, &i.InitialExportWh, &i.FinalImportWh, &i.FinalExportWh, &i.Reason, &i.RemovalReason)
	return i, err
}

// InstallMeter implements account.Store.
func (s *Store) InstallMeter(ctx context.Context, tenantID, connectionID int64, ni account.NewInstallation, e audit.Entry) (account.Installation, error) {
	var inst account.Installation
	err := s.tx(ctx, func(tx pgx.Tx) error {
		before, err := auditpg.Snapshot(ctx, tx, "connections", "id", connectionID)
		if err != nil {
			return err
		}
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM connections WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenantID, connectionID).Scan(&one); err != nil {
			return notFound(err, account.ErrConnectionNotFound, "connection")
		}
		var serial string
		if err := tx.QueryRow(ctx, `SELECT serial FROM meters WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenantID, ni.MeterID).Scan(&serial); err != nil {
			return notFound(err, account.ErrMeterNotFound, "meter")
		}
		var curID, curMeter int64
		var curSince time.Time
		err = tx.QueryRow(ctx, `SELECT id, meter_id, installed_at FROM meter_installations WHERE connection_id = $1 AND removed_at IS NULL`,
			connectionID).Scan(&curID, &curMeter, &curSince)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		case curMeter == ni.MeterID:
			return fmt.Errorf("%w: the meter is already installed on this connection", account.ErrConflict)
		case !ni.At.After(curSince):
			v := account.NewValidator(account.ErrInvalidInput)
			v.Add("installed_at", "must be after the current meter's installation at "+curSince.UTC().Format(time.RFC3339))
			return v.Err()
		default:
			if _, err := tx.Exec(ctx, `UPDATE meter_installations SET removed_at = $2, final_import_wh = $3, final_export_wh = $4,
				removal_reason = $5 WHERE id = $1`, curID, ni.At, ni.FinalImportWh, ni.FinalExportWh, ni.RemovalReason); err != nil {
				return err
			}
		}
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO meter_installations (tenant_id, connection_id, meter_id, installed_at,
				initial_import_wh, initial_export_wh, reason, installed_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			tenantID, connectionID, ni.MeterID, ni.At, ni.InitialImportWh, ni.InitialExportWh, ni.Reason, nullID(ni.InstalledBy)).Scan(&id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE connections SET meter_number = $2,
				status = CASE WHEN status = 'pending' THEN 'active' ELSE status END, updated_at = now()
			WHERE id = $1`, connectionID, serial); err != nil {
			return err
		}
		e.After = map[string]any{"installation_id": id, "meter_id": ni.MeterID, "installed_at": ni.At, "reason": ni.Reason}
		if err := writeAudit(ctx, tx, e, before, "connections", "id", connectionID); err != nil {
			return err
		}
		inst, err = scanInstallation(tx.QueryRow(ctx, `SELECT `+installationColumns+` FROM meter_installations i
			JOIN meters m ON m.id = i.meter_id WHERE i.id = $1`, id))
		return err
	})
	var ve *account.ValidationError
	if errors.Is(err, account.ErrConnectionNotFound) || errors.Is(err, account.ErrMeterNotFound) || errors.As(err, &ve) {
		return inst, err
	}
	return inst, translate(err, "install meter")
}

// Installations implements account.Store.
func (s *Store) Installations(ctx context.Context, scope account.Scope, connectionID int64) ([]account.Installation, error) {
	if _, err := s.Connection(ctx, scope, connectionID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+installationColumns+` FROM meter_installations i JOIN meters m ON m.id = i.meter_id
		WHERE i.tenant_id = $1 AND i.connection_id = $2 ORDER BY i.installed_at DESC`, scope.TenantID, connectionID)
	if err != nil {
		return nil, translate(err, "installations")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (account.Installation, error) { return scanInstallation(r) })
	return list, translate(err, "installations")
}

// BackdateService moves the start of a connection's service back to at:
// the connection's connected_at and, when its current meter is the only
// one it and the meter have had, that installation's installed_at and the
// meter's installed_at, each only when later than at. It is for loading
// history that predates the records (meterd dev backfills its demo
// consumer's meter with months of simulated readings); it is not audited.
// It reports whether anything moved; an unknown connection is
// account.ErrConnectionNotFound.
func (s *Store) BackdateService(ctx context.Context, tenantID, connectionID int64, at time.Time) (bool, error) {
	moved := false
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var since time.Time
		if err := tx.QueryRow(ctx, `SELECT connected_at FROM connections WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenantID, connectionID).Scan(&since); err != nil {
			return notFound(err, account.ErrConnectionNotFound, "connection")
		}
		if since.After(at) {
			if _, err := tx.Exec(ctx, `UPDATE connections SET connected_at = $2, updated_at = now() WHERE id = $1`, connectionID, at); err != nil {
				return err
			}
			moved = true
		}
		var n int
		if err := tx.QueryRow(ctx, `WITH i AS (
				UPDATE meter_installations i SET installed_at = $2
				WHERE i.connection_id = $1 AND i.removed_at IS NULL AND i.installed_at > $2
				  AND NOT EXISTS (SELECT 1 FROM meter_installations o WHERE o.id <> i.id AND (o.connection_id = i.connection_id OR o.meter_id = i.meter_id))
				RETURNING i.meter_id),
			m AS (UPDATE meters m SET installed_at = $2 FROM i WHERE m.id = i.meter_id AND m.installed_at > $2 RETURNING m.id)
			SELECT (SELECT count(*) FROM i) + (SELECT count(*) FROM m)`, connectionID, at).Scan(&n); err != nil {
			return err
		}
		moved = moved || n > 0
		return nil
	})
	if errors.Is(err, account.ErrConnectionNotFound) {
		return false, err
	}
	return moved, translate(err, "backdate service")
}
