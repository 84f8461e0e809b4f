package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/meterd/meterd/billing"
	billingpg "github.com/meterd/meterd/billing/postgres"
)

// demoSewerage is the demo tenant's sewerage masters (plan sw-domestic),
// MDMS-shaped as DIGIT's sw-services-calculation: per water closet, with
// interest, penalty and the one-time fee masters.
const demoSewerage = `{
  "SCBillingSlab": [
    {"id": "1", "buildingType": "RESIDENTIAL", "connectionType": "Non Metered", "calculationAttribute": "No. of water closets",
     "minimumCharge": 0, "slabs": [{"from": 0, "to": 1000000000, "charge": 15}]},
    {"id": "3", "buildingType": "NONRESIDENTIAL", "connectionType": "Non Metered", "calculationAttribute": "No. of water closets",
     "minimumCharge": 0, "slabs": [{"from": 0, "to": 1000000000, "charge": 30}]}
  ],
  "CalculationAttribute": [{"name": "Non Metered", "code": "NONMETERED", "attribute": "No. of water closets", "active": true}],
  "Interest": [{"rate": 5, "applicableAfterDays": 0, "fromFY": "2019-20", "startingDay": "1/01/2019"}],
  "Penalty": [{"rate": 10, "applicableAfterDays": 0, "fromFY": "2019-20", "startingDay": "1/01/2019"}],
  "FeeSlab": [{"formFee": 25, "scrutinyFee": 250, "meterCost": 850, "other": 325, "taxpercentage": 5, "isActive": true}],
  "RoadType": [{"name": "CC Road", "code": "CCROAD", "unitCost": 180, "isActive": true},
               {"name": "Brick Paving", "code": "BRICKPAVING", "unitCost": 30, "isActive": true}],
  "PropertyUsageType": [{"code": "RESIDENTIAL", "unitCost": 20}, {"code": "NONRESIDENTIAL.COMMERCIAL", "unitCost": 30}],
  "PlotSizeSlab": [{"from": 0, "to": 600, "unitCost": 2500}, {"from": 600, "to": 1200, "unitCost": 8000},
                   {"from": 1200, "to": 1000000000, "unitCost": 16000}]
}`

// seedMunicipalDemo publishes the demo sewerage masters unless they exist,
// so the municipal routes have a plan to work with.
func seedMunicipalDemo(ctx context.Context, store *billingpg.Store, tenantID int64) (string, error) {
	_, err := store.PublishTariff(ctx, billingpg.Publish{TenantID: tenantID, Service: "sewerage", Plan: "sw-domestic", Document: []byte(demoSewerage),
		Version: "FY2024-25", EffectiveFrom: billing.NewDate(2024, 4, 1)})
	if err != nil && !errors.Is(err, billing.ErrConflict) {
		return "", fmt.Errorf("demo sewerage masters: %w", err)
	}
	return "  Sewerage    masters sw-domestic published; POST /api/municipal/estimate {\"service\":\"sewerage\",\"plan\":\"sw-domestic\"}\n", nil
}
