-- Argo CD health check for rung.dev/ModelDeployment.
-- Install it as resource.customizations.health.rung.dev_ModelDeployment in argocd-cm
-- (docs/argocd.md). Argo CD sets `obj` to the live object; the script returns hs.
local hs = {}

local function condition(conditions, type_)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function message_of(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local status = obj.status
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local phase = status.phase
local ready = condition(status.conditions, "Ready")
local degraded = condition(status.conditions, "Degraded")
local progressing = condition(status.conditions, "Progressing")

if phase == "Failed" or phase == "RolledBack" then
  hs.status = "Degraded"
  hs.message = phase .. ": " .. message_of(degraded, message_of(ready, "see status.history"))
  return hs
end

if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = message_of(degraded, "Degraded")
  return hs
end

if phase == "Paused" then
  hs.status = "Suspended"
  hs.message = message_of(progressing, "Paused: waiting for a manual approval")
  return hs
end

if phase == "Shadowing" then
  hs.status = "Progressing"
  local text = "Shadowing"
  if status.canary ~= nil and status.canary.version ~= nil then
    local mirrored = 100
    if status.canary.shadow ~= nil and status.canary.shadow.mirrorPercent ~= nil then
      mirrored = status.canary.shadow.mirrorPercent
    end
    text = text .. ": canary " .. status.canary.version .. " gets " .. tostring(mirrored) .. "% of requests mirrored, no user traffic"
  end
  hs.message = text .. " (" .. message_of(progressing, message_of(ready, "in progress")) .. ")"
  return hs
end

if phase == "Progressing" or phase == "Promoting" or phase == "RollingBack" or phase == "Pending" then
  hs.status = "Progressing"
  local text = phase
  if status.canary ~= nil and status.canary.version ~= nil then
    text = text .. ": canary " .. status.canary.version .. " at " .. tostring(status.canary.weight or 0) .. "%"
  end
  hs.message = text .. " (" .. message_of(progressing, message_of(ready, "in progress")) .. ")"
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message_of(ready, "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = message_of(ready, "Waiting for Ready")
return hs
