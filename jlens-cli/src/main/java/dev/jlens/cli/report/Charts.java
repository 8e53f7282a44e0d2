package dev.jlens.cli.report;

import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.DeviationRenderer;
import org.jfree.chart.renderer.xy.XYShapeRenderer;
import org.jfree.chart.title.TextTitle;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;
import org.jfree.data.xy.YIntervalSeries;
import org.jfree.data.xy.YIntervalSeriesCollection;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Base64;
import java.util.List;

/**
 * Line charts with optional 95% CI bands and scatter plots, drawn by JFreeChart and embedded in the page as
 * base64 PNG so the report is one self-contained file that works offline.
 */
public final class Charts {

    static {
        System.setProperty("java.awt.headless", "true");
    }

    static final Color[] PALETTE = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0x9467bd),
            new Color(0xff7f0e), new Color(0x8c564b), new Color(0x17becf)};

    /** One line: y values over x, with optional lower/upper CI (NaN where absent). */
    public record Line(String name, double[] x, double[] y, double[] lo, double[] hi, boolean dashed) {
        public static Line of(String name, double[] x, double[] y) {
            return new Line(name, x, y, null, null, false);
        }
    }

    private Charts() {
    }

    public static String lineChart(String title, String xLabel, String yLabel, List<Line> lines, Double yMin, Double yMax) {
        YIntervalSeriesCollection data = new YIntervalSeriesCollection();
        for (Line l : lines) {
            YIntervalSeries s = new YIntervalSeries(l.name());
            for (int i = 0; i < l.x().length; i++) {
                double y = l.y()[i];
                if (Double.isNaN(y) || Double.isInfinite(y)) continue;
                double lo = l.lo() == null || Double.isNaN(l.lo()[i]) ? y : l.lo()[i];
                double hi = l.hi() == null || Double.isNaN(l.hi()[i]) ? y : l.hi()[i];
                s.add(l.x()[i], y, lo, hi);
            }
            data.addSeries(s);
        }
        NumberAxis xAxis = new NumberAxis(xLabel);
        xAxis.setStandardTickUnits(NumberAxis.createIntegerTickUnits());
        xAxis.setAutoRangeIncludesZero(false);
        NumberAxis yAxis = new NumberAxis(yLabel);
        yAxis.setAutoRangeIncludesZero(false);
        if (yMin != null && yMax != null) yAxis.setRange(yMin, yMax);
        DeviationRenderer r = new DeviationRenderer(true, true);
        for (int i = 0; i < lines.size(); i++) {
            Color c = PALETTE[i % PALETTE.length];
            r.setSeriesPaint(i, c);
            r.setSeriesFillPaint(i, new Color(c.getRed(), c.getGreen(), c.getBlue(), 60));
            r.setSeriesStroke(i, lines.get(i).dashed()
                    ? new BasicStroke(2f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND, 1f, new float[]{6f, 4f}, 0f)
                    : new BasicStroke(2.2f));
        }
        r.setAlpha(0.25f);
        XYPlot plot = new XYPlot(data, xAxis, yAxis, r);
        style(plot);
        JFreeChart chart = new JFreeChart(null, JFreeChart.DEFAULT_TITLE_FONT, plot, true);
        chart.setTitle(new TextTitle(title, new Font("SansSerif", Font.BOLD, 15)));
        chart.setBackgroundPaint(Color.WHITE);
        return png(chart, 640, 360);
    }

    /**
     * Curves on fixed axes with ordinary decimal ticks (ROC, reliability), where {@link #lineChart}'s integer
     * layer axis does not fit; CI columns of the lines are ignored, dashed lines stay dashed.
     */
    public static String curveChart(String title, String xLabel, String yLabel, List<Line> lines,
                                    double xMin, double xMax, double yMin, double yMax) {
        XYSeriesCollection data = new XYSeriesCollection();
        for (Line l : lines) {
            XYSeries s = new XYSeries(l.name(), false, true);
            for (int i = 0; i < l.x().length; i++) {
                if (Double.isFinite(l.x()[i]) && Double.isFinite(l.y()[i])) s.add(l.x()[i], l.y()[i]);
            }
            data.addSeries(s);
        }
        NumberAxis xAxis = new NumberAxis(xLabel);
        xAxis.setRange(xMin, xMax);
        NumberAxis yAxis = new NumberAxis(yLabel);
        yAxis.setRange(yMin, yMax);
        org.jfree.chart.renderer.xy.XYLineAndShapeRenderer r = new org.jfree.chart.renderer.xy.XYLineAndShapeRenderer(true, true);
        for (int i = 0; i < lines.size(); i++) {
            r.setSeriesPaint(i, lines.get(i).dashed() ? Color.GRAY : PALETTE[i % PALETTE.length]);
            r.setSeriesShapesVisible(i, !lines.get(i).dashed());
            r.setSeriesShape(i, new java.awt.geom.Ellipse2D.Double(-2.5, -2.5, 5, 5));
            r.setSeriesStroke(i, lines.get(i).dashed()
                    ? new BasicStroke(1.5f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND, 1f, new float[]{6f, 4f}, 0f)
                    : new BasicStroke(2f));
        }
        XYPlot plot = new XYPlot(data, xAxis, yAxis, r);
        style(plot);
        JFreeChart chart = new JFreeChart(null, JFreeChart.DEFAULT_TITLE_FONT, plot, true);
        chart.setTitle(new TextTitle(title, new Font("SansSerif", Font.BOLD, 15)));
        chart.setBackgroundPaint(Color.WHITE);
        return png(chart, 640, 460);
    }

    /** Points coloured by class, e.g. a PCA projection. */
    public static String scatter(String title, String xLabel, String yLabel, List<String> classNames, List<double[][]> points) {
        XYSeriesCollection data = new XYSeriesCollection();
        for (int c = 0; c < classNames.size(); c++) {
            XYSeries s = new XYSeries(classNames.get(c), false, true);
            for (double[] p : points.get(c)) s.add(p[0], p[1]);
            data.addSeries(s);
        }
        NumberAxis xAxis = new NumberAxis(xLabel);
        NumberAxis yAxis = new NumberAxis(yLabel);
        xAxis.setAutoRangeIncludesZero(false);
        yAxis.setAutoRangeIncludesZero(false);
        XYShapeRenderer r = new XYShapeRenderer();
        for (int c = 0; c < classNames.size(); c++) {
            Color col = PALETTE[c % PALETTE.length];
            r.setSeriesPaint(c, new Color(col.getRed(), col.getGreen(), col.getBlue(), 170));
            r.setSeriesShape(c, new java.awt.geom.Ellipse2D.Double(-3.5, -3.5, 7, 7));
        }
        XYPlot plot = new XYPlot(data, xAxis, yAxis, r);
        style(plot);
        JFreeChart chart = new JFreeChart(null, JFreeChart.DEFAULT_TITLE_FONT, plot, true);
        chart.setTitle(new TextTitle(title, new Font("SansSerif", Font.BOLD, 15)));
        chart.setBackgroundPaint(Color.WHITE);
        return png(chart, 640, 460);
    }

    private static void style(XYPlot plot) {
        plot.setOrientation(PlotOrientation.VERTICAL);
        plot.setBackgroundPaint(new Color(0xfafafa));
        plot.setDomainGridlinePaint(new Color(0xdddddd));
        plot.setRangeGridlinePaint(new Color(0xdddddd));
        plot.setOutlineVisible(false);
    }

    private static String png(JFreeChart chart, int w, int h) {
        try {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            ChartUtils.writeScaledChartAsPNG(bytes, chart, w, h, 2, 2);
            return "data:image/png;base64," + Base64.getEncoder().encodeToString(bytes.toByteArray());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

}
