// Only what the dashboard draws: bars, lines and pies on a grid, with tooltips and legends, on canvas.
import * as echarts from 'echarts/core';
import { BarChart, LineChart, PieChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TitleComponent, TooltipComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([BarChart, LineChart, PieChart, GridComponent, LegendComponent, TitleComponent, TooltipComponent,
             CanvasRenderer]);

export const { init, getInstanceByDom, use } = echarts;
export const version = echarts.version;
