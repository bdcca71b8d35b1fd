# Terraform (azurerm) equivalent of ../bicep/private-endpoint.bicep: a
# Private Endpoint to the corporate egressd Private Link Service with a
# dynamic IP (static only as an opt-in) and a manual connection request (approved by the corporate team).

variable "private_link_service_alias" {
  description = "Alias of the corporate Private Link Service, from the corporate team."
  type        = string
}

variable "subnet_id" {
  description = "Resource ID of the workload subnet the endpoint lives in."
  type        = string
}

variable "private_ip_address" {
  description = "Opt-in static private IP (e.g. \"10.2.128.100\"). null, the default, lets Azure assign one: Microsoft does not support a static IP for a customer-owned Private Link Service, and a dynamic one stays fixed for the endpoint's lifetime."
  type        = string
  default     = null
}

variable "request_message" {
  description = "Shown to the corporate team when they approve the connection."
  type        = string
  validation {
    condition     = length(var.request_message) <= 140
    error_message = "Azure limits the request message to 140 characters."
  }
}

variable "name" {
  type    = string
  default = "pe-egressd"
}

variable "resource_group_name" {
  type = string
}

variable "location" {
  type = string
}

resource "azurerm_private_endpoint" "egressd" {
  name                          = var.name
  resource_group_name           = var.resource_group_name
  location                      = var.location
  subnet_id                     = var.subnet_id
  custom_network_interface_name = "${var.name}-nic"

  private_service_connection {
    name                              = "${var.name}-connection"
    private_connection_resource_alias = var.private_link_service_alias
    # Manual: the PLS belongs to another tenant, whose owner approves it.
    is_manual_connection = true
    request_message      = var.request_message
  }

  # Only with the static opt-in. A Private Link Service has no subresource
  # names, so the one ip_configuration only pins the address.
  dynamic "ip_configuration" {
    for_each = var.private_ip_address == null ? [] : [var.private_ip_address]
    content {
      name               = "egressd"
      private_ip_address = ip_configuration.value
    }
  }
}

# The address Azure gave the endpoint (or the static opt-in): put it into
# ../inject/config.yaml and force-proxy-egress (docs/deploy.md).
output "private_ip_address" {
  value = azurerm_private_endpoint.egressd.private_service_connection[0].private_ip_address
}

output "proxy_url" {
  value = "http://${azurerm_private_endpoint.egressd.private_service_connection[0].private_ip_address}:3128"
}
