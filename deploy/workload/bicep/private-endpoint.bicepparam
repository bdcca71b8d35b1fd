using 'private-endpoint.bicep'

// PLACEHOLDERS: every value below is an example.
param privateLinkServiceAlias = 'pls-egressd.00000000-0000-0000-0000-000000000000.westeurope.azure.privatelinkservice'
param subnetId = '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-workload/providers/Microsoft.Network/virtualNetworks/vnet-workload/subnets/snet-endpoints'
// Static IP, an explicit opt-in (not supported by Microsoft for a
// customer-owned Private Link Service; docs/deploy.md):
// param privateIpAddress = '10.2.128.100'
param requestMessage = 'team-a, cluster aks-team-a-prod, contact team-a@example.com'
